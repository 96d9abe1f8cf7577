"""Hard examples on recorded runs: wrong since epoch k, flip-flops, and ``ffdv hard``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import install_fixture_runs

from engine.cli import main
from engine.contract.errors import DataError
from engine.data.hard_examples import flip_flops, score_table, wrong_since


def write_run(root: Path, epochs: dict[int, dict[str, float]], targets: dict[str, int]) -> Path:
    folder = root / "run" / "predictions"
    folder.mkdir(parents=True)
    for epoch, scores in epochs.items():
        rows = [f"{name},{targets[name]},{score},{int(score > 0.5)}" for name, score in scores.items()]
        (folder / f"epoch-{epoch:03d}.csv").write_text("img_name,target,score,pred\n" + "\n".join(rows) + "\n")
    return root / "run"


TARGETS = {"always_wrong.jpg": 1, "wrong_from_2.jpg": 0, "flipper.jpg": 1, "fine.jpg": 0, "late.jpg": 1}
EPOCHS = {
    1: {"always_wrong.jpg": 0.1, "wrong_from_2.jpg": 0.2, "flipper.jpg": 0.9, "fine.jpg": 0.1, "late.jpg": 0.9},
    2: {"always_wrong.jpg": 0.2, "wrong_from_2.jpg": 0.7, "flipper.jpg": 0.2, "fine.jpg": 0.2, "late.jpg": 0.9},
    3: {"always_wrong.jpg": 0.3, "wrong_from_2.jpg": 0.8, "flipper.jpg": 0.8, "fine.jpg": 0.3, "late.jpg": 0.9},
    4: {"always_wrong.jpg": 0.4, "wrong_from_2.jpg": 0.9, "flipper.jpg": 0.3, "fine.jpg": 0.4, "late.jpg": 0.2},
}


def test_wrong_since_and_flip_flops(tmp_path: Path):
    scores, targets = score_table(write_run(tmp_path, EPOCHS, TARGETS))
    assert list(scores.columns) == [1, 2, 3, 4]
    assert set(wrong_since(scores, targets, 1)) == {"always_wrong.jpg"}
    assert set(wrong_since(scores, targets, 2)) == {"always_wrong.jpg", "wrong_from_2.jpg"}
    assert set(wrong_since(scores, targets, 4)) == {"always_wrong.jpg", "wrong_from_2.jpg", "flipper.jpg", "late.jpg"}
    # flipper: fake, real, fake, real (3 changes); wrong_from_2 and late change once
    assert set(flip_flops(scores, 2, 4)) == {"flipper.jpg"}
    assert set(flip_flops(scores, 1, 4)) == {"flipper.jpg", "wrong_from_2.jpg", "late.jpg"}
    assert set(flip_flops(scores, 1, 2)) == {"flipper.jpg", "late.jpg"}
    with pytest.raises(DataError, match="no validation from that epoch"):
        wrong_since(scores, targets, 9)
    with pytest.raises(DataError, match="1 <= m < n"):
        flip_flops(scores, 4, 4)


def test_the_command_on_a_recorded_run(tmp_path: Path, capsys):
    runs = install_fixture_runs(tmp_path / "runs")
    out = tmp_path / "hard.csv"
    assert main(["hard", str(runs / "finished"), "--since", "1", "--flip-flops", "1/3", "--out", str(out)]) == 0
    frame = pd.read_csv(out, dtype={"img_name": str})
    assert list(frame.columns) == ["img_name", "target", "score", "reason"]
    scores, targets = score_table(runs / "finished")
    expected = set(wrong_since(scores, targets, 1)) | set(flip_flops(scores, 1, 3))
    assert set(frame["img_name"]) == expected and len(frame) == len(expected) > 0
    wrong = frame[frame["reason"] == "wrong since epoch 1"]
    assert ((wrong["score"] > 0.5) != (wrong["target"] == 1)).all()
    assert (frame["score"] - frame["target"]).abs().iloc[: len(wrong)].is_monotonic_decreasing
    assert main(["hard", str(runs / "finished"), "--flip-flops", "two"]) == 2
    assert "write it as M/N" in capsys.readouterr().err
    assert main(["hard", str(tmp_path)]) == 2


def test_models_disagree_over_a_matrix(tmp_path: Path):
    from test_tui_matrix import fake_matrix

    from engine.contract.matrixstore import SCORES

    folder = fake_matrix(tmp_path / "m", tmp_path)
    scores = pd.read_parquet(folder / SCORES)
    clean = scores[scores["perturbation"] == "none"].set_index("img_name")
    expected = set(clean.index[(clean["a"] > 0.5) != (clean["b"] > 0.5)])
    out = tmp_path / "disagree.csv"
    assert main(["hard", str(folder), "--disagree", "--out", str(out)]) == 0
    frame = pd.read_csv(out, dtype={"img_name": str})
    assert set(frame["img_name"]) == expected and len(expected) > 0
    assert main(["hard", str(folder), "--disagree", "--perturbation", "nope"]) == 2
