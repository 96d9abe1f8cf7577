"""The fixed SRM residual stem (model.stem): what it computes, that it is saved and never trained, and that a
checkpoint with it loads back into the same model (or is refused with the reason)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engine.checkpoint_loading import inference_setup, load_checkpoint
from engine.contract.config import load_config
from engine.contract.errors import CheckpointError
from engine.models import build_network, create_model
from engine.stems import STEM_KEY, SRMStem, StemmedModel, srm_kernels, stem_of_state


def test_each_srm_kernel_is_a_high_pass_filter() -> None:
    kernels = srm_kernels()
    assert kernels.shape == (3, 3, 5, 5)
    assert torch.allclose(kernels.sum(dim=(2, 3)), torch.zeros(3, 3), atol=1e-6)
    assert kernels[1, 0, 2, 2] == pytest.approx(-1.0)  # KV's centre, -12/12


def test_a_constant_image_has_zero_residual_everywhere_borders_included() -> None:
    x = torch.full((2, 3, 20, 24), 0.7)
    out = SRMStem(keep_rgb=False)(x)
    assert out.shape == (2, 3, 20, 24)
    assert out.abs().max() < 1e-6
    noise = SRMStem(keep_rgb=False)(torch.rand(1, 3, 20, 24))
    assert noise.abs().mean() > 0.05  # noise is what the stem keeps


def test_rgb_plus_srm_puts_the_image_before_its_residuals() -> None:
    x = torch.rand(1, 3, 16, 16)
    out = SRMStem(keep_rgb=True)(x)
    assert out.shape == (1, 6, 16, 16)
    assert torch.equal(out[:, :3], x)
    assert torch.allclose(out[:, 3:], SRMStem(keep_rgb=False)(x))


@pytest.mark.parametrize(("stem", "channels"), [("srm", 3), ("rgb+srm", 6)])
def test_the_stem_is_saved_and_never_trained(stem: str, channels: int) -> None:
    model, _spec, _ = create_model(load_config(overrides={"model.name": "test_resnet", "model.stem": stem}))
    assert isinstance(model, StemmedModel)
    state = model.state_dict()
    assert torch.equal(state[STEM_KEY], srm_kernels())
    assert all("stem" not in name for name, _ in model.named_parameters())  # no optimiser step or decay reaches it
    first_conv = next(v for k, v in state.items() if k.startswith("backbone.") and v.dim() == 4)
    assert first_conv.shape[1] == channels
    assert stem_of_state(state) == stem
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 2)


def test_the_default_model_is_behind_the_srm_stem_and_rgb_has_plain_timm_keys() -> None:
    model, _, _ = create_model(load_config(overrides={"model.name": "test_resnet"}))
    assert isinstance(model, StemmedModel) and stem_of_state(model.state_dict()) == "srm"  # the recipe that generalised
    model, _, _ = create_model(load_config(overrides={"model.name": "test_resnet", "model.stem": "rgb"}))
    assert not isinstance(model, StemmedModel) and stem_of_state(model.state_dict()) == "rgb"


def _save(tmp_path: Path, stem: str, sidecar_stem: str | None) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = build_network("test_resnet", stem)
    path = tmp_path / "epoch-001.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    sidecar = {"model": "test_resnet", "img_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3}
    if sidecar_stem is not None:
        sidecar["stem"] = sidecar_stem
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path, model


def test_a_saved_srm_checkpoint_scores_as_the_model_it_was_saved_from(tmp_path: Path) -> None:
    path, model = _save(tmp_path, "rgb+srm", "rgb+srm")
    loaded = load_checkpoint(path, inference_setup("cpu"))
    x = torch.rand(3, 3, 32, 32)
    model.eval()
    with torch.inference_mode():
        assert torch.allclose(loaded.model.eval()(x), model(x), atol=1e-5)


@pytest.mark.parametrize(("weights", "sidecar", "words"), [
    ("srm", None, "says model.stem = 'rgb', but the weights have the SRM residual stem"),
    ("rgb+srm", "srm", "says model.stem = 'srm', but the weights have the SRM residual stem (stem.kernels) of a 'rgb+srm'"),
    ("rgb", "srm", "says model.stem = 'srm', but the weights have no SRM stem"),
])
def test_a_stem_mismatch_between_sidecar_and_weights_is_refused(tmp_path: Path, weights: str, sidecar, words: str) -> None:
    path, _ = _save(tmp_path, weights, sidecar)
    with pytest.raises(CheckpointError, match="Fix: set") as caught:
        load_checkpoint(path, inference_setup("cpu"))
    assert words in str(caught.value)


def test_without_a_sidecar_the_weights_tell_the_stem(tmp_path: Path) -> None:
    path, _ = _save(tmp_path, "srm", "srm")
    path.with_suffix(".json").unlink()
    loaded = load_checkpoint(path, inference_setup("cpu"), model_name="test_resnet", img_size=32)
    assert isinstance(loaded.model, StemmedModel) and not loaded.model.stem.keep_rgb


@pytest.mark.parametrize(("saved", "stem", "left_out"), [("srm", "srm", 0), ("rgb+srm", "rgb+srm", 0), ("rgb", "srm", 0),
                                                        ("rgb+srm", "rgb", 1)])
def test_a_checkpoint_with_or_without_a_stem_is_a_pretrained_file_for_another_run(
        tmp_path: Path, saved: str, stem: str, left_out: int) -> None:
    """Fine-tuning from a run's checkpoint (the app's "new run from a checkpoint"): its backbone's tensors are used."""
    path, source = _save(tmp_path, saved, saved)
    config = load_config(overrides={"model.name": "test_resnet", "model.stem": stem, "model.pretrained": str(path)})
    model, _, notes = create_model(config)
    source_backbone = source.backbone.state_dict() if isinstance(source, StemmedModel) else source.state_dict()
    target = model.backbone.state_dict() if isinstance(model, StemmedModel) else model.state_dict()
    same = [k for k, v in target.items() if torch.equal(v, source_backbone[k])]
    assert len(target) - len(same) == left_out  # only a first layer of another width starts fresh
    assert len(notes) == left_out
