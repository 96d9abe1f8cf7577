"""The submission rules in their one home (engine.contract.submission): the path, the frame, the check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.contract.submission import (
    SubmissionError,
    check_submission,
    default_submission,
    submission_frame,
    submission_in,
)


def test_a_runs_checkpoint_writes_into_its_runs_submissions_folder(tmp_path: Path) -> None:
    weights = tmp_path / "run" / "checkpoints" / "epoch-002.safetensors"
    weights.parent.mkdir(parents=True)
    weights.touch()
    (weights.parent / "best.safetensors").symlink_to(weights.name)
    assert default_submission(weights.parent / "best.safetensors", "testset") == \
        tmp_path / "run" / "submissions" / "epoch-002-testset.csv"
    assert default_submission(weights, "testset", "mean-flip").name == "epoch-002-mean-flip-testset.csv"
    assert default_submission(tmp_path / "loose.safetensors", "test") == Path("loose-test.csv")


def test_a_row_name_becomes_a_safe_file_name(tmp_path: Path) -> None:
    assert submission_in(tmp_path, "a/b +flip-test") == tmp_path / "submissions" / "a_b__flip-test.csv"


def test_the_frame_has_every_image_in_order_and_half_for_the_unread() -> None:
    frame = submission_frame(["a", "b", "c"], np.array([0, 2]), np.array([0.9, 0.1]))
    assert frame["img_name"].tolist() == ["a", "b", "c"] and frame["y_pred"].tolist() == [0.9, 0.5, 0.1]


@pytest.mark.parametrize(("text", "names", "problem"), [
    ("name,score\na,0.1\n", None, "header"),
    ("img_name,y_pred\nb,0.1\na,0.2\n", ["a", "b"], "order"),
    ("img_name,y_pred\na,1.5\n", None, "outside"),
    ("img_name,y_pred\na,text\n", None, "outside"),
    ("img_name,y_pred\na,0.1\na,0.2\n", None, "twice"),
])
def test_the_check_names_the_file_and_the_problem(tmp_path: Path, text: str, names, problem: str) -> None:
    path = tmp_path / "s.csv"
    path.write_text(text)
    with pytest.raises(SubmissionError, match=problem) as caught:
        check_submission(path, names)
    assert str(path) in str(caught.value)


def test_a_good_submission_is_described(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("img_name,y_pred\n001.jpg,0.25\n002.jpg,0.75\n")
    assert check_submission(path, ["001.jpg", "002.jpg"]) == "2 rows, header img_name,y_pred, y_pred in [0.250, 0.750]"
