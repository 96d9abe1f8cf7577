"""The generalisation benchmark, tiny: two recipes, two epochs on the sample data; its table must be complete."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE_DATA

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import bench_quality  # noqa: E402


@pytest.mark.slow
def test_tiny_benchmark_reports_every_recipe_and_column(tmp_path: Path, capsys) -> None:
    args = bench_quality.parse_args(["--data", str(SAMPLE_DATA), "--recipes", "rgb,default", "--epochs", "2",
                                     "--model", "test_resnet", "--img-size", "32", "--work", str(tmp_path / "work"),
                                     "--json", str(tmp_path / "quality.json")])
    rows = bench_quality.run(args)
    assert [r["recipe"] for r in rows] == ["rgb", "default"]
    for row in rows:
        assert set(row) == set(bench_quality.COLUMNS)
        for key in ("val_auc", "test_auc_unseen_sources", "test_auc_unseen_family"):
            assert row[key] is not None and 0.0 <= row[key] <= 1.0, (row["recipe"], key)
        assert row["minutes"] > 0
    printed = capsys.readouterr().out
    assert "| rgb |" in printed and "| default |" in printed and "test AUC, unseen family" in printed
    saved = json.loads((tmp_path / "quality.json").read_text())
    assert len(saved) == 2 * (len(bench_quality.COLUMNS) - 1) and not any(math.isnan(v) for v in saved.values())


def test_test_subsets_split_the_test_fakes_by_family() -> None:
    import pandas as pd

    record = json.loads((SAMPLE_DATA / "sources.json").read_text())
    test = pd.read_csv(SAMPLE_DATA / "testset_label.txt")
    unseen = {n.split("/", 1)[1] for n, i in record["images"].items() if "copy-move" in i.get("families", [])}
    perfect_on_known = test.assign(score=[0.0 if t == 0 else (0.4 if n in unseen else 1.0)
                                          for n, t in zip(test["img_name"], test["target"])])
    auc = bench_quality.test_subsets(SAMPLE_DATA, perfect_on_known)
    assert auc["test_auc_unseen_sources"] == 1.0 and auc["test_auc_unseen_family"] == 1.0
    chance_on_unseen = perfect_on_known.assign(score=[0.0 if n in unseen else s for n, s in
                                                      zip(perfect_on_known["img_name"], perfect_on_known["score"])])
    auc = bench_quality.test_subsets(SAMPLE_DATA, chance_on_unseen)
    assert auc["test_auc_unseen_sources"] == 1.0 and auc["test_auc_unseen_family"] == 0.5


@pytest.mark.slow
def test_tiny_family_benchmark_reports_every_test_set(tmp_path: Path, capsys) -> None:
    """The unseen-family benchmark end to end: a family set made on the fly, two seeds, a column per family."""
    import make_family_data

    args = bench_quality.parse_args(["--families", str(tmp_path / "families"), "--family-counts", "32", "16", "12",
                                     "--recipes", "pseudo-fakes", "--seeds", "1", "2", "--epochs", "1",
                                     "--model", "test_resnet", "--img-size", "32", "--work", str(tmp_path / "work"),
                                     "--json", str(tmp_path / "families.json")])
    rows = bench_quality.run(args)
    assert [(r["recipe"], r["seed"]) for r in rows] == [("pseudo-fakes", 1), ("pseudo-fakes", 2)]
    for row in rows:
        for test in make_family_data.TEST_SETS:
            assert row[f"auc {test}"] is not None and 0.0 <= row[f"auc {test}"] <= 1.0, (row, test)
        assert row["auc unseen mean"] == pytest.approx(
            sum(row[f"auc {f}"] for f in make_family_data.UNSEEN_FAMILIES) / len(make_family_data.UNSEEN_FAMILIES))
    for folder in ("trainset", "valset", *(f"test-{t}" for t in make_family_data.TEST_SETS)):
        assert (tmp_path / "families" / folder).is_dir() and (tmp_path / "families" / f"{folder}_label.txt").is_file()
    assert "| pseudo-fakes | 2 |" in capsys.readouterr().out
