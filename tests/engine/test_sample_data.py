"""The bundled sample data: its shape, and that the default training learns it (AUC >= 0.75)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import SAMPLE_DATA

from engine.cli import main
from engine.contract.runstate import load_run
from engine.data.dataset import find_dataset


def test_sample_data_is_a_small_balanced_ffdi_dataset() -> None:
    size = sum(p.stat().st_size for p in SAMPLE_DATA.rglob("*") if p.is_file())
    assert size < 5 * 1024 * 1024
    dataset = find_dataset(SAMPLE_DATA)
    assert dataset.layout == "ffdi" and set(dataset.splits) == {"train", "val", "test"}
    for split in dataset.splits.values():
        counts = split.class_counts()
        assert split.labelled and counts["real"] == counts["fake"] > 0, split.name
    names = [n for s in dataset.splits.values() for n in s.names]
    assert len(names) == len(set(names))


def test_sample_data_splits_share_no_source_photograph() -> None:
    """From the generator's record (sources.json): each photograph, and each splice donor, in one split only."""
    record = json.loads((SAMPLE_DATA / "sources.json").read_text())
    dataset = find_dataset(SAMPLE_DATA)
    folders = {"train": "trainset", "val": "valset", "test": "testset"}
    used: dict[str, set[str]] = {}
    families: dict[str, set[str]] = {}
    for key, split in dataset.splits.items():
        for name, target in zip(split.names, split.targets.tolist()):
            image = record["images"][f"{folders[key]}/{name}"]  # every image is in the record
            assert image["split"] == key and image["target"] == target
            used.setdefault(key, set()).update({image["source"], image.get("donor", image["source"])})
            families.setdefault(key, set()).update(image.get("families", []))
            assert bool(image.get("families")) == bool(target)
    assert len(record["images"]) == sum(len(s) for s in dataset.splits.values())
    assert not used["train"] & used["val"] and not used["train"] & used["test"] and not used["val"] & used["test"]
    assert used == {split: set(keys) for split, keys in record["splits"].items()}
    unseen = record["unseen_family"]["family"]
    assert unseen in families["test"] and unseen not in families["train"] | families["val"]


def test_default_training_learns_the_sample_data(tmp_path: Path) -> None:
    assert main(["train", "--data", str(SAMPLE_DATA), "--runs", str(tmp_path), "--name", "sample"]) == 0
    state = load_run(tmp_path / "sample")
    assert state.status == "finished" and state.epoch == state.epochs == 8
    assert state.best_value is not None and state.best_value >= 0.75, state.best_value
    print(f"sample training: best AUC {state.best_value:.4f} at epoch {state.best_epoch}, {state.duration:.0f} s")
    sidecar = json.loads((tmp_path / "sample" / "checkpoints" / "best.json").read_text())
    assert sidecar["metrics"]["auc"] == state.best_value
