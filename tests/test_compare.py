"""Comparing runs headless: best-not-last, the settings that differ, ROC equal to scikit-learn's, timm folders, CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_curve as sk_roc_curve

from engine.cli import main
from engine.contract.compare import compare, compare_table, roc_set
from engine.contract.roc import read_predictions, roc_curve
from engine.contract.runsummary import summarize
from tests.conftest import install_fixture_runs


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return install_fixture_runs(tmp_path / "runs")


def write_timm_folder(folder: Path, epochs: int = 3) -> Path:
    """What timm's train.py leaves: summary.csv (0-based epochs, top1 in percent) and args.yaml."""
    folder.mkdir(parents=True)
    rows = ["epoch,train_loss,eval_loss,eval_top1,eval_top5,lr"]
    for e in range(epochs):
        rows.append(f"{e},{0.9 - 0.1 * e},{0.8 - 0.05 * e},{60 + 10 * e - (15 if e == epochs - 1 else 0)},100,0.001")
    (folder / "summary.csv").write_text("\n".join(rows) + "\n")
    (folder / "args.yaml").write_text("model: resnet10t\nlr: 0.001\nepochs: 3\nbatch_size: 16\nimg_size: 64\n"
                                      "data_dir: /data/ffdi\nopt: sgd\nmixup: 0.2\n")
    return folder


def test_best_is_the_best_validation_not_the_last(runs: Path):
    finished = summarize(runs / "finished")
    assert finished.metrics[3]["recall"] < finished.metrics[1]["recall"]  # the recording's recall peaks first
    best = finished.best("recall")
    assert (best.value, best.epoch) == (finished.metrics[1]["recall"], 1)
    assert finished.best("auc").epoch == 3
    assert finished.best("loss").value == min(m["loss"] for m in finished.metrics.values())  # lower is better
    assert finished.status == "finished" and summarize(runs / "crashed").status == "crashed"


def test_only_the_settings_that_differ_are_columns(runs: Path):
    comparison = compare([summarize(runs / n) for n in ("finished", "stopped", "crashed")])
    assert comparison.differing == ("train.epochs", "train.seed")  # run.name differs too, but is no setting
    table = compare_table(comparison)
    assert table.columns[:4] == ("run", "status", "train.epochs", "train.seed")
    assert "best AUC" in table.columns and "best count" not in table.columns
    assert [row[0].text for row in table.rows] == ["finished", "stopped", "crashed"]
    assert not comparison.notes


def test_baseline_first_and_others_as_differences(runs: Path):
    comparison = compare([summarize(runs / n) for n in ("finished", "stopped")])
    table = compare_table(comparison, baseline="stopped", sort="best AUC", descending=True)
    assert table.names == ("stopped", "finished")
    auc = table.columns.index("best AUC")
    seed = table.columns.index("train.seed")
    base, other = table.rows
    assert base[auc].text == "0.6848 @1"
    assert other[auc].text == "+0.1357 @3"
    assert other[seed].text == "42" and base[0].text.startswith("◆")


def test_sort_by_any_column_puts_empty_cells_last(runs: Path):
    comparison = compare([summarize(runs / n) for n in ("finished", "stopped", "crashed")])
    by_auc = compare_table(comparison, sort="best AUC")
    assert by_auc.names == ("crashed", "stopped", "finished")
    assert compare_table(comparison, sort="best AUC", descending=True).names == ("finished", "stopped", "crashed")
    assert compare_table(comparison, sort="run").names == ("crashed", "finished", "stopped")


def test_roc_equals_scikit_learn(runs: Path):
    predictions = read_predictions(runs / "finished" / "predictions" / "epoch-003.csv")
    for drop in (True, False):
        ours = roc_curve(predictions.targets, predictions.scores, drop_intermediate=drop)
        fpr, tpr, thresholds = sk_roc_curve(predictions.targets, predictions.scores, drop_intermediate=drop)
        np.testing.assert_array_equal(ours.fpr, fpr)
        np.testing.assert_array_equal(ours.tpr, tpr)
        np.testing.assert_array_equal(ours.thresholds, thresholds)
    rng = np.random.default_rng(0)
    targets, scores = rng.integers(0, 2, 500), rng.integers(0, 20, 500) / 20  # many ties
    ours, theirs = roc_curve(targets, scores), sk_roc_curve(targets, scores)
    np.testing.assert_array_equal(ours.fpr, theirs[0])
    np.testing.assert_array_equal(ours.tpr, theirs[1])


def test_roc_overlaid_only_on_the_same_validation_split(runs: Path):
    other = runs / "other-data"
    shutil.copytree(runs / "finished", other)
    for csv in (other / "predictions").glob("*.csv"):
        csv.write_text(csv.read_text().replace(".jpg", ".png"))  # other images
    config = other / "config.toml"
    config.write_text(config.read_text().replace("[data]\nroot = ", "[data]\nroot = \"/elsewhere\"\nold_root = "))
    comparison = compare([summarize(runs / n) for n in ("finished", "stopped", "other-data")])
    assert any("different datasets" in note for note in comparison.notes)
    rocs = roc_set(comparison)
    assert [name for name, _ in rocs.curves] == ["finished", "stopped"]
    assert [name for name, _ in rocs.left_out] == ["other-data"]
    assert "another validation split" in rocs.left_out[0][1]
    assert [name for name, _ in roc_set(comparison, baseline="other-data").curves] == ["other-data"]


def test_roc_of_the_best_validation(runs: Path):
    finished = summarize(runs / "finished")
    assert finished.best_predictions() == runs / "finished" / "predictions" / "epoch-003.csv"


def test_a_forged_predictions_path_is_not_followed(runs: Path):
    events = runs / "finished" / "events.jsonl"
    events.write_text(events.read_text().replace('"path":"predictions/epoch-003.csv"', '"path":"../../../etc/passwd"'))
    assert 3 not in summarize(runs / "finished").predictions


def test_timm_folder_is_a_read_only_run(tmp_path: Path, runs: Path):
    folder = write_timm_folder(runs / "timm-resnet")
    timm = summarize(folder)
    assert timm.kind == "timm" and timm.epochs == (1, 2, 3)
    assert timm.settings["model.name"] == "resnet10t" and timm.settings["timm.mixup"] == 0.2
    assert timm.best("accuracy").epoch == 2 and timm.best("accuracy").value == pytest.approx(0.7)
    comparison = compare([summarize(runs / "finished"), timm])
    assert "optim.optimizer" in comparison.differing
    assert any("read-only timm" in note for note in comparison.notes)
    assert roc_set(comparison).left_out == (("timm-resnet", "no per-image predictions"),)


def test_ffdv_compare_prints_the_table(runs: Path, capsys):
    assert main(["compare", "finished", "stopped", "--runs", str(runs), "--baseline", "finished"]) == 0
    out = capsys.readouterr().out
    assert "train.seed" in out and "optim.lr" not in out
    assert "◆ finished" in out and "0.8206 @3" in out and "-0.1357 @1" in out


@pytest.mark.parametrize("argv, message", [
    (["compare", "nope", "--runs", "RUNS"], "nope: no run folder"),
    (["compare", "finished", "--runs", "RUNS", "--baseline", "stopped"], "--baseline stopped: not one of"),
    (["compare", "finished", "--runs", "RUNS", "--sort", "speed"], "--sort speed: no such column"),
    (["compare", "finished", "finished", "--runs", "RUNS"], "named twice"),
])
def test_ffdv_compare_bad_input(runs: Path, capsys, argv, message):
    assert main([str(runs) if a == "RUNS" else a for a in argv]) == 2
    assert message in capsys.readouterr().err


def test_ffdv_runs_lists_a_timm_folder(runs: Path, capsys):
    write_timm_folder(runs / "timm-resnet")
    assert main(["runs", "--runs", str(runs)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "timm-re" in line)  # cut to 80 columns
    assert "finished" in line and "accuracy 0.7000" in line and "3/3" in line
