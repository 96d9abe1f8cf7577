"""The comparison in a real terminal: tmux runs ffdv-tui at 120x36, space marks two runs, m compares them."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import SAMPLE_DATA, install_fixture_runs
from test_tmux import Tmux

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")


def test_mark_two_runs_and_compare_them(tmp_path: Path) -> None:
    runs = install_fixture_runs(tmp_path / "runs")
    tmux = Tmux(f"ffdv-compare-{os.getpid()}", 120, 36, f"--runs {runs} --data {SAMPLE_DATA} --images none", tmp_path,
                tmp_path / "cache")
    try:
        screen = tmux.wait_for(lambda s: "n New run" in s and "finished" in s and "crashed" in s, 60, "the workbench")
        tmux.keys("Space")  # the newest run, selected first
        tmux.wait_for(lambda s: "1 marked" in s, 30, "one run marked")
        tmux.keys("Down")
        tmux.wait_for(lambda s: s != screen and re.search(r"ffdv-tui — crashed", s) is not None, 30, "the next run")
        tmux.keys("Space")
        tmux.wait_for(lambda s: "2 marked" in s, 30, "two runs marked")
        tmux.keys("m")
        screen = tmux.wait_for(lambda s: "compare · 2 runs" in s and "TPR" in s and "best AUC" in s, 60,
                               "the comparison")
        assert "train.seed" in screen and "train.epochs" in screen and "optim.lr" not in screen
        assert "0.6848 @1" in screen and "0.6428 @1" in screen  # stopped's and crashed's best AUC
        assert "1e-3" in screen and "finished" not in screen.split("ROC")[0]  # only the two marked runs
        (tmp_path / "capture.txt").write_text(screen)
        if os.environ.get("FFDV_CAPTURE"):
            Path(os.environ["FFDV_CAPTURE"]).write_text(screen)
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "n New run" in s, 30, "back at the workbench")
    finally:
        tmux.close()
