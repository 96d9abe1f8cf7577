"""The evaluation matrix in a real terminal: two runs trained on sample_data, the keyboard marks their checkpoints
(space), opens the matrix form (x), starts it, and the matrix screen shows both runs and their mean ensemble.

Skipped when tmux is not installed (.ci/run installs it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import FAST_TRAIN, SAMPLE_DATA
from test_tmux import Tmux

pytestmark = [pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"),
              pytest.mark.slow, pytest.mark.timeout(1800)]  # two trainings and a matrix of 11 perturbations


@pytest.fixture(scope="module")
def sample_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.cli import main

    runs = tmp_path_factory.mktemp("matrix-tmux") / "runs"
    for name, seed in (("sample-a", "0"), ("sample-b", "1")):
        assert main(["train", "--data", str(SAMPLE_DATA), "--runs", str(runs), *FAST_TRAIN, "--epochs", "1",
                     "--seed", seed, "--name", name]) == 0
    return runs


def test_mark_two_checkpoints_and_see_the_matrix_in_tmux(sample_runs: Path, tmp_path: Path) -> None:
    tmux = Tmux(f"ffdv-matrix-{os.getpid()}", 200, 50, f"--runs {sample_runs} --data {SAMPLE_DATA} --images none",
                tmp_path, tmp_path / "cache")
    try:
        tmux.wait_for(lambda s: "sample-a" in s and "sample-b" in s, 30, "the run list")
        tmux.keys("k")
        tmux.wait_for(lambda s: s.count("epoch-001") >= 2, 30, "both checkpoints")
        tmux.keys("Space")
        tmux.wait_for(lambda s: "for a matrix (x):" in s, 10, "the first mark")
        tmux.keys("Down", "Space")
        # the detail pane wraps the list of marks: look for both names after its label
        tmux.wait_for(lambda s: "for a matrix (x):" in s and all(f"{run}/epoch-001" in s.split("for a matrix (x):")[1]
                                                                 for run in ("sample-a", "sample-b")), 30, "both marks")
        tmux.keys("x")
        tmux.wait_for(lambda s: "Evaluation matrix of" in s and "jpeg:50" in s, 10, "the matrix form")
        tmux.keys("C-s")
        screen = tmux.wait_for(lambda s: "AUC against JPEG quality" in s and "ensemble-mean" in s, 540, "the matrix")
        assert "sample-a/epoch-001" in screen and "sample-b/epoch-001" in screen
        for column in ("none", "jpeg:90", "jpeg:50", "blur:2", "resize:0.5+jpeg:75"):
            assert column in screen, column
    finally:
        tmux.close()
