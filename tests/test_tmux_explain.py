"""The map in a real terminal: tmux runs ffdv-tui on the recorded finished run with real weights under its last
checkpoint; m on the predictions screen starts an engine job, its map replaces the picture, m again brings the image
back. Skipped when tmux is not installed (.ci/run installs it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import install_fixture_runs
from test_explain_app import MAP_TIMEOUT, write_weights
from test_tmux import Tmux
from test_tmux_predictions import selected_run, table_rows

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")]


def half_cell_rows(screen: str) -> int:
    return sum(line.count("▀") >= 10 for line in screen.splitlines())


def test_m_toggles_the_map_in_tmux(tmp_path: Path) -> None:
    runs = install_fixture_runs(tmp_path / "runs")
    write_weights(runs / "finished" / "checkpoints")
    tmux = Tmux(f"ffdv-map-{os.getpid()}", 120, 36, f"--runs {runs} --images halfcell", tmp_path, tmp_path / "cache")
    try:
        screen = tmux.wait_for(lambda s: selected_run(s) is not None and "finished" in s, 30, "the run list")
        for _ in range(5):  # the list is newest first: stopped, crashed, finished
            if selected_run(screen) == "finished":
                break
            before = selected_run(screen)
            tmux.keys("Down")
            screen = tmux.wait_for(lambda s, before=before: selected_run(s) != before, 60, "the next run")
        tmux.keys("v")
        screen = tmux.wait_for(lambda s: "128 shown of 128" in s and len(table_rows(s)) > 5, 60, "the predictions")
        tmux.keys("Home")
        name = table_rows(screen)[0][0]
        tmux.wait_for(lambda s: half_cell_rows(s) >= 5 and s.count(name) == 2, 60, "the picture")
        tmux.keys("m")
        tmux.wait_for(lambda s: "computing the map of epoch-003" in s, 30, "the job to start")
        screen = tmux.wait_for(lambda s: "map · Grad-CAM toward fake · epoch-003" in s, MAP_TIMEOUT, "the map")
        assert half_cell_rows(screen) >= 5, screen
        tmux.keys("m")
        tmux.wait_for(lambda s: "map · Grad-CAM" not in s and half_cell_rows(s) >= 5, 30, "the image again")
        tmux.keys("m")  # cached: the map's line comes back without a job
        screen = tmux.wait_for(lambda s: "map · Grad-CAM" in s, 30, "the cached map")
        assert "computing" not in screen
        tmux.keys("q")
        tmux.wait_for(lambda s: "ffdv-tui exited 0" in s, 60, "the app to quit")
    finally:
        tmux.close()
