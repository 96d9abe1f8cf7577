"""The predictions screen in a real terminal: tmux runs ffdv-tui at 120x36 on the recorded runs, the keyboard
picks the finished run, opens its predictions and filters them, and the half-cell picture is drawn.

Skipped when tmux is not installed (.ci/run installs it).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import install_fixture_runs
from test_tmux import Tmux

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")

ROW = re.compile(r"\b([0-9a-f]{16}\.jpg)\s+(real|fake)\s+(\d\.\d{4})\s+(real|fake)\s+([✓✗])")


def table_rows(screen: str) -> list[tuple[str, str, float, str, str]]:
    """The prediction rows on screen: name, true label, score, called, mark."""
    return [(m[1], m[2], float(m[3]), m[4], m[5]) for m in ROW.finditer(screen)]


def selected_run(screen: str) -> str | None:
    match = re.search(r"ffdv-tui — (\S+) ·", screen)
    return match.group(1) if match else None


def test_predictions_filter_and_preview_in_tmux(tmp_path: Path) -> None:
    runs = install_fixture_runs(tmp_path / "runs")
    tmux = Tmux(f"ffdv-pred-{os.getpid()}", 120, 36, f"--runs {runs} --images halfcell", tmp_path,
                tmp_path / "cache")
    try:
        screen = tmux.wait_for(lambda s: selected_run(s) is not None and "finished" in s, 30, "the run list")
        for _ in range(5):  # the list is newest first: stopped, crashed, finished
            if selected_run(screen) == "finished":
                break
            before = selected_run(screen)
            tmux.keys("Down")
            screen = tmux.wait_for(lambda s, before=before: selected_run(s) != before, 60, "the next run")
        assert selected_run(screen) == "finished", screen
        tmux.keys("v")
        screen = tmux.wait_for(lambda s: "128 shown of 128" in s and len(table_rows(s)) > 5, 60,
                               "the predictions of finished")
        assert any(mark == "✓" for *_, mark in table_rows(screen))
        tmux.keys("f")  # all -> misclassified; wait for that filter's own answer, not any change (thumbnails arrive too)
        screen = tmux.wait_for(lambda s: re.search(r"misclassified \(50\)", s) is not None
                               and "50 shown of 128" in s and all(r[4] == "✗" for r in table_rows(s)), 60,
                               "only misclassified rows")
        rows = table_rows(screen)
        assert len(rows) > 5 and all(mark == "✗" for *_, mark in rows), screen
        assert all((called == "fake") != (true == "fake") for _, true, _, called, _ in rows)
        scores = [score for _, _, score, _, _ in rows]
        assert scores == sorted(scores, reverse=True)  # score, high first
        # Home highlights the first row: its picture is drawn in half cells (rows of ▀ beside the table), with its
        # name again in the caption under it. The filter kept the cursor on its image, so it may be lower down.
        tmux.keys("Home")
        name, true, score, called, _ = rows[0]
        tmux.wait_for(lambda s: sum(line.count("▀") >= 10 for line in s.splitlines()) >= 5 and s.count(name) == 2
                      and f"true {true} · fake score {score:.4f} · called {called}" in s, 60,
                      f"the half-cell picture of {name}, with its caption")
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "shown of" not in s and "v Predictions" in s, 60, "the main screen")
        tmux.keys("q")
        tmux.wait_for(lambda s: "ffdv-tui exited 0" in s, 60, "the app to quit")
    finally:
        tmux.close()
