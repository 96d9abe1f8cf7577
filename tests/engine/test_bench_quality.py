"""The generalisation benchmark, tiny: two recipes, two epochs on the sample data; its table must be complete."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE_DATA

REPO = Path(__file__).resolve().parents[2]
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


def test_a_fold_of_the_rotation_never_trains_on_the_family_it_leaves_out(tmp_path: Path) -> None:
    """Leave-one-family-out: training and validation fakes of the five other families only, test-seen with them,
    and a test folder of the family left out alone; families.json says which image has which."""
    import make_family_data

    make_family_data.make(tmp_path, 3, {"train": 40, "val": 12, "test": 12}, leave_out="warp")
    manifest = json.loads((tmp_path / "families.json").read_text())
    trained = set(make_family_data.ALL_FAMILIES) - {"warp"}
    assert manifest["left_out"] == "warp" and set(manifest["trained"]) == trained
    by_folder: dict[str, set[str]] = {}
    for name, families in manifest["images"].items():
        by_folder.setdefault(name.split("/", 1)[0], set()).update(families)
    assert by_folder["trainset"] | by_folder["valset"] <= trained and "warp" not in by_folder["trainset"]
    assert len(by_folder["trainset"]) >= 3, "the fakes are drawn from the trained families, not from one"
    assert by_folder["test-seen"] <= trained and by_folder["test-warp"] == {"warp"}
    assert not (tmp_path / "test-copy-move").exists(), "a fold has one unseen test folder: the family left out"
    labels = {line.split(",")[0]: line.split(",")[1] for line in (tmp_path / "test-warp_label.txt").read_text().split()[1:]}
    fakes = {n.split("/", 1)[1] for n, f in manifest["images"].items() if n.startswith("test-warp/") and f}
    assert fakes == {n for n, t in labels.items() if t == "1"} and len(fakes) == 6


def test_the_family_makers_draw_the_known_families_as_the_sample_data_does() -> None:
    """forger(KNOWN_FAMILIES) must make the images make_sample_data's forge makes from the same seed, so that the
    family set of earlier measurements is remade bit for bit."""
    import make_family_data
    import make_sample_data as sample
    import numpy as np

    sources = sample.load_sources()
    host = sources[0].pixels
    box = sample.random_crop(np.random.default_rng(0), host, (64, 48))
    image = sample.crop_and_resize(host, box, (64, 48))
    for seed in range(6):
        expected = sample.forge(np.random.default_rng(seed), image, sources, 0, {})
        made = make_family_data.forger(sample.KNOWN_FAMILIES)(np.random.default_rng(seed), image, {}, sources=sources,
                                                             host_index=0, host=host, box=box)
        assert np.array_equal(expected, made), seed
    with pytest.raises(ValueError, match="unknown forgery family 'morph'"):
        make_family_data.make(Path("/nonexistent"), 1, {"train": 4, "val": 4, "test": 4}, leave_out="morph")


def test_the_rotation_needs_a_folder_for_its_folds() -> None:
    with pytest.raises(SystemExit):
        bench_quality.parse_args(["--leave-one-out", "all"])
    args = bench_quality.parse_args(["--families", "/tmp/x", "--leave-one-out", "warp,morph"])
    with pytest.raises(SystemExit, match="unknown family morph"):
        bench_quality.run(args)


@pytest.mark.slow
def test_tiny_rotation_reports_every_fold_and_the_mean_per_recipe(tmp_path: Path, capsys) -> None:
    args = bench_quality.parse_args(["--families", str(tmp_path / "folds"), "--leave-one-out", "warp,splice",
                                     "--family-counts", "32", "16", "12", "--recipes", "default", "--seeds", "1",
                                     "--epochs", "1", "--model", "test_resnet", "--img-size", "32",
                                     "--work", str(tmp_path / "work"), "--json", str(tmp_path / "rotation.json")])
    rows = bench_quality.run(args)
    assert [(r["recipe"], r["left out"]) for r in rows] == [("default", "warp"), ("default", "splice")]
    for row in rows:
        for key in ("val_auc", "auc seen", "auc left out"):
            assert row[key] is not None and 0.0 <= row[key] <= 1.0, (row, key)
    for family in ("warp", "splice"):
        assert (tmp_path / "folds" / f"leave-out-{family}" / f"test-{family}").is_dir()
    printed = capsys.readouterr().out
    assert "| default | 1 | warp |" in printed and "| default | 1 | splice |" in printed
    mean = sum(r["auc left out"] for r in rows) / 2
    assert f"| default | {sum(r['auc seen'] for r in rows) / 2:.4f} | {mean:.4f} | 2 |" in printed
