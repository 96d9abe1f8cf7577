"""Checkpoints: top-k, best/last links, atomic writes, safe loading; pretrained weights files."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

import engine.checkpoint_store as checkpoint_store
from engine.checkpoint_loading import inference_setup, load_checkpoint
from engine.checkpoint_store import CheckpointManager, newest_resumable, read_index, resolve_checkpoint
from engine.contract.config import Config
from engine.contract.errors import CheckpointError, ModelError
from engine.contract.sidecar import Sidecar
from engine.models import create_model, load_weights_file, read_state_dict


def weights(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((4, 4), value), "b": torch.zeros(4)}


def save(manager: CheckpointManager, epoch: int, metric: float | None, reason: str = "epoch", state: bool = True):
    return manager.save(epoch=epoch, step=epoch * 10, weights=weights(epoch), sidecar=Sidecar(model="toy"),
                        state={"epoch": epoch} if state else None, metric_value=metric, reason=reason)


def target(folder: Path, alias: str) -> str:
    return os.path.basename(os.path.realpath(folder / f"{alias}.safetensors"))


def test_keeps_top_k_plus_last_and_points_best_and_last(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, "auc", True, keep_top_k=2)
    results = [save(manager, e, m) for e, m in enumerate([0.5, 0.7, 0.6, 0.8, 0.4], start=1)]
    assert [is_best for _, is_best in results] == [True, True, False, True, False]
    kept = sorted(p.name for p in tmp_path.glob("epoch-*.safetensors"))
    assert kept == ["epoch-002.safetensors", "epoch-004.safetensors", "epoch-005.safetensors"]
    assert target(tmp_path, "best") == "epoch-004.safetensors"
    assert target(tmp_path, "last") == "epoch-005.safetensors"
    assert [p.name for p in tmp_path.glob("*.state.pt")] == ["epoch-005.state.pt"]
    assert json.loads((tmp_path / "best.json").read_text())["epoch"] == 4
    assert [r.name for r in read_index(tmp_path)] == ["epoch-002", "epoch-004", "epoch-005"]
    assert load_file(str(tmp_path / "best.safetensors"))["w"][0, 0] == 4


def test_lower_is_better_metric_and_ties_prefer_newer(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, "loss", False, keep_top_k=1)
    save(manager, 1, 0.3)
    save(manager, 2, 0.2)
    _, is_best = save(manager, 3, 0.2)
    assert is_best and target(tmp_path, "best") == "epoch-003.safetensors"
    save(manager, 4, 0.9)
    assert target(tmp_path, "best") == "epoch-003.safetensors"
    assert sorted(p.name for p in tmp_path.glob("epoch-*.safetensors")) == ["epoch-003.safetensors",
                                                                           "epoch-004.safetensors"]


def test_best_exists_before_any_validation(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, "auc", True, 3)
    save(manager, 0, None, reason="command")
    assert (tmp_path / "best.safetensors").exists() and (tmp_path / "last.safetensors").exists()


def test_mid_epoch_checkpoint_is_newest_for_resume(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, "auc", True, 3)
    save(manager, 1, 0.6)
    save(manager, 1, None, reason="stop")
    state, record = newest_resumable(tmp_path)
    assert record.reason == "stop" and state.name == "epoch-001-step-00000010.state.pt"
    assert target(tmp_path, "best") == "epoch-001.safetensors"


def test_manager_reloads_its_index(tmp_path: Path) -> None:
    save(CheckpointManager(tmp_path, "auc", True, 2), 1, 0.9)
    again = CheckpointManager(tmp_path, "auc", True, 2)
    assert again.best().epoch == 1
    _, is_best = save(again, 2, 0.8)
    assert not is_best


def test_a_kill_mid_write_leaves_the_previous_checkpoint_intact(tmp_path: Path, monkeypatch) -> None:
    manager = CheckpointManager(tmp_path, "auc", True, 3)
    save(manager, 1, 0.7)
    index_before = (tmp_path / "index.json").read_text()

    def half_write(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 100)  # the start of a file, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_store, "save_file", half_write)
    with pytest.raises(KeyboardInterrupt):
        save(manager, 2, 0.9)
    assert not list(tmp_path.glob(".*tmp*")) and not (tmp_path / "epoch-002.safetensors").exists()
    assert (tmp_path / "index.json").read_text() == index_before
    assert load_file(str(tmp_path / "best.safetensors"))["w"][0, 0] == 1
    assert load_file(str(tmp_path / "last.safetensors"))["w"][0, 0] == 1


def test_resolve_checkpoint_accepts_run_folder_sidecar_and_file(tmp_path: Path) -> None:
    run = tmp_path / "run"
    manager = CheckpointManager(run / "checkpoints", "auc", True, 3)
    save(manager, 1, 0.5)
    assert resolve_checkpoint(run).name == "best.safetensors"
    assert resolve_checkpoint(run / "checkpoints" / "epoch-001.json").name == "epoch-001.safetensors"
    with pytest.raises(CheckpointError, match="not found"):
        resolve_checkpoint(run / "nope.safetensors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no best.safetensors"):
        resolve_checkpoint(tmp_path / "empty")


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    model = timm.create_model("test_resnet", num_classes=2)
    path = tmp_path / "epoch-001.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    (tmp_path / "epoch-001.json").write_text(json.dumps({"model": "test_resnet", "img_size": 48,
                                                        "mean": [0.5] * 3, "std": [0.5] * 3}))
    return path


def test_load_checkpoint_uses_the_sidecar(tiny_checkpoint: Path) -> None:
    loaded = load_checkpoint(tiny_checkpoint, inference_setup("cpu"))
    assert loaded.spec.img_size == 48 and loaded.spec.mean == (0.5, 0.5, 0.5)
    assert loaded.model(torch.zeros(1, 3, 48, 48)).shape == (1, 2)


def test_missing_sidecar_needs_a_model_name(tiny_checkpoint: Path) -> None:
    tiny_checkpoint.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="--model"):
        load_checkpoint(tiny_checkpoint, inference_setup("cpu"))
    loaded = load_checkpoint(tiny_checkpoint, inference_setup("cpu"), model_name="test_resnet", img_size=32)
    assert loaded.spec.img_size == 32


def test_sidecar_of_another_model_is_reported(tiny_checkpoint: Path) -> None:
    tiny_checkpoint.with_suffix(".json").write_text(json.dumps({"model": "resnet10t"}))
    with pytest.raises(CheckpointError, match="do not fit model 'resnet10t'"):
        load_checkpoint(tiny_checkpoint, inference_setup("cpu"))


def test_truncated_weights_are_reported(tiny_checkpoint: Path) -> None:
    data = tiny_checkpoint.read_bytes()
    tiny_checkpoint.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_checkpoint(tiny_checkpoint, inference_setup("cpu"))


# ---------------------------------------------------------------- pretrained weights files


class NotATensor:
    def __reduce__(self):  # unpickling this would run code: weights_only must refuse it
        return (time.sleep, (0,))


def test_a_pickle_with_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": NotATensor()}, path)
    with pytest.raises(ModelError, match="cannot read weights") as caught:
        read_state_dict(path)
    assert "never unpickles" in str(caught.value) and "weights_only set to `False`" not in str(caught.value)


def test_predict_takes_a_state_dict_trained_elsewhere(tmp_path: Path) -> None:
    """A .pth from a DDP training script (container and module. prefix) loads with --model; junk says why."""
    from engine.contract.errors import CheckpointError

    source = timm.create_model("test_resnet", num_classes=2)
    path = tmp_path / "elsewhere.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    loaded = load_checkpoint(path, inference_setup("cpu"), model_name="test_resnet", img_size=64)
    key = next(iter(source.state_dict()))
    assert torch.equal(loaded.model.state_dict()[key], source.state_dict()[key]) and loaded.spec.img_size == 64
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_checkpoint(junk, inference_setup("cpu"), model_name="test_resnet", img_size=64)


def test_imagenet_weights_fit_except_the_head(tmp_path: Path) -> None:
    source = timm.create_model("test_resnet", num_classes=1000)
    path = tmp_path / "in1k.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    target_model = timm.create_model("test_resnet", num_classes=2)
    notes = load_weights_file(target_model, path, "test_resnet")
    assert len(notes) == 1 and "fc.weight" in notes[0]
    key = next(k for k in source.state_dict() if k.startswith("conv1"))
    assert torch.equal(target_model.state_dict()[key], source.state_dict()[key])


def test_weights_of_another_model_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    other = timm.create_model("test_efficientnet", num_classes=2)
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(path))
    with pytest.raises(ModelError, match="do not fit model 'test_resnet'"):
        load_weights_file(timm.create_model("test_resnet", num_classes=2), path, "test_resnet")


def test_hub_weights_offline_fail_at_once_with_the_fix(monkeypatch) -> None:
    import engine.models

    monkeypatch.setattr(engine.models, "_hub_reachable", lambda timeout=3.0: False)
    config = Config()
    config.model.name = "test_resnet"
    config.model.pretrained = "hub"
    with pytest.raises(ModelError, match="--pretrained PATH"):
        create_model(config)


@pytest.mark.parametrize("stem, prefix", [("rgb", ""), ("srm", "backbone.")])
def test_pretrained_file_through_the_config(tmp_path: Path, stem: str, prefix: str) -> None:
    """Plain timm weights fill the model, or the backbone behind the (default) SRM stem."""
    source = timm.create_model("test_resnet", num_classes=2)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    config = Config()
    config.model.name = "test_resnet"
    config.model.pretrained = str(path)
    config.model.stem = stem
    model, spec, notes = create_model(config)
    assert notes == [] and spec.img_size == config.data.img_size
    for k, v in source.state_dict().items():
        assert torch.equal(model.state_dict()[prefix + k], v)
