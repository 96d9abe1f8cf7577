"""Class-activation maps: the arithmetic by hand, real timm models (CNN, ViT, behind the SRM stem), a model that
learned a patch looks at the patch, and ``ffdv explain`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from engine.cam import ExplainError, TargetLayer, class_activation_maps, find_target_layer
from engine.cli import main
from engine.contract.jobs import ExplainResult, JobFailed, decode_job_message
from engine.explain import explain_image, place_maps
from engine.loader import ImageSpec
from engine.models import build_network
from engine.stems import backbone_of


class ConvThenLinear(nn.Module):
    """conv (4 channels, 6x6) -> flatten -> linear: the gradient at each position is a weight, known by hand."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 6 * 6, 2)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


@pytest.fixture
def two_layer():
    torch.manual_seed(0)
    model = ConvThenLinear().eval()
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        acts = model.conv(x)
    w_diff = (model.fc.weight[1] - model.fc.weight[0]).detach().view(4, 6, 6)  # d(z_fake - z_real) / d acts
    return model, x, acts, w_diff


def test_gradcam_equals_the_hand_computation(two_layer):
    model, x, acts, w_diff = two_layer
    maps, probs = class_activation_maps(model, x, TargetLayer("conv", model.conv, "nchw"), "gradcam")
    weights = w_diff.mean((1, 2))  # the mean gradient of each channel
    expected = torch.relu((weights[None, :, None, None] * acts).sum(1))
    assert torch.allclose(maps, expected, atol=1e-5)
    assert torch.allclose(probs, model(x).softmax(1)[:, 1].detach(), atol=1e-6)
    assert maps.abs().sum() > 0
    real, _ = class_activation_maps(model, x, TargetLayer("conv", model.conv, "nchw"), "gradcam", "real")
    assert torch.allclose(real, torch.relu(-(weights[None, :, None, None] * acts).sum(1)), atol=1e-5)


def test_hirescam_and_gradcam_pp_equal_the_hand_computation(two_layer):
    model, x, acts, w_diff = two_layer
    target = TargetLayer("conv", model.conv, "nchw")
    hires, _ = class_activation_maps(model, x, target, "hirescam")
    assert torch.allclose(hires, torch.relu((w_diff[None] * acts).sum(1)), atol=1e-5)
    plus, _ = class_activation_maps(model, x, target, "gradcam++")
    g = w_diff[None].expand_as(acts)
    alpha = g**2 / (2 * g**2 + acts.sum((2, 3), keepdim=True) * g**3 + 1e-7)
    weights = (alpha * torch.relu(g)).sum((2, 3), keepdim=True)
    assert torch.allclose(plus, torch.relu((weights * acts).sum(1)), atol=1e-4)
    assert not torch.allclose(hires, plus)


def _pictures(n: int, size: int = 64) -> list[Image.Image]:
    rng = np.random.default_rng(3)
    return [Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def _spec(img_size: int = 64) -> ImageSpec:
    return ImageSpec(img_size=img_size, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


@pytest.mark.parametrize("name,stem,expected_layer", [
    ("test_resnet", "rgb", None), ("test_resnet", "srm", "backbone."), ("test_vit", "rgb", "blocks.")])
def test_maps_of_real_models_differ_between_images(name, stem, expected_layer):
    torch.manual_seed(1)
    kwargs = {"img_size": 64} if name == "test_vit" else {}
    model = build_network(name, stem, pretrained=False, **kwargs).eval()
    target = find_target_layer(model, None, 64)
    if expected_layer:
        assert target.name.startswith(expected_layer)
    assert target.layout == ("tokens" if name == "test_vit" else "nchw")
    first, second = (explain_image(model, _spec(), target, img, torch.device("cpu"), "gradcam", "called")[0]
                     for img in _pictures(2))
    for heat in (first, second):
        assert heat.shape == (64, 64) and heat.dtype == np.float32
        assert heat.min() >= 0.0 and heat.max() <= 1.0 and heat.std() > 0.01  # not constant
    assert np.abs(first - second).mean() > 0.01


def test_a_missing_layer_names_the_flag():
    model = build_network("test_resnet", pretrained=False).eval()
    with pytest.raises(ExplainError, match="--layer 'layer9'"):
        find_target_layer(model, "layer9", 64)
    with pytest.raises(ExplainError, match="--layer NAME"):
        find_target_layer(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2)), None, 8)


def test_maps_come_back_at_the_image_geometry():
    """A centre crop's map is zero outside the crop; a native grid covers the image; sizes are the image's."""
    ones = np.ones((1, 32, 32), np.float32)
    cropped = place_maps(ones, 80, 40, ImageSpec(32, (0.5,) * 3, (0.5,) * 3, eval_crop=0.5))
    assert cropped.shape == (40, 80)
    assert cropped[20, 40] == 1.0 and cropped[20, 2] == 0.0  # resized to 128x64, the crop is columns 48..80
    native = place_maps(np.ones((4, 32, 32), np.float32), 50, 60, ImageSpec(32, (0.5,) * 3, (0.5,) * 3,
                                                                          crop="native", eval_grid=2))
    assert native.shape == (60, 50) and native.min() == 1.0


# ---------------------------------------------------------------- a model that learned a patch looks at it

PATCH = 12


def _patch_dataset(n: int, size: int = 48, seed: int = 0):
    """Smooth random backgrounds; fakes carry a textured (checkerboard-noise) patch at a random place."""
    rng = np.random.default_rng(seed)
    images, targets, boxes = [], [], []
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        base = np.stack([yy * rng.uniform(60, 200), xx * rng.uniform(60, 200), (xx + yy) * rng.uniform(30, 100)], -1)
        fake = i % 2
        box = None
        if fake:
            y, x = rng.integers(0, size - PATCH, 2)
            checker = (np.indices((PATCH, PATCH)).sum(0) % 2)[..., None] * 60.0 - 30.0
            base[y:y + PATCH, x:x + PATCH] += checker + rng.normal(0, 10, (PATCH, PATCH, 3))
            box = (int(y), int(x))
        images.append(np.clip(base, 0, 255).astype(np.uint8))
        targets.append(fake)
        boxes.append(box)
    return np.stack(images), np.array(targets), boxes


def _tiny_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 24, 3, padding=1, stride=2), nn.ReLU(),
        nn.Conv2d(24, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 2))


@pytest.mark.slow
def test_a_model_that_learned_the_patch_is_explained_by_the_patch():
    torch.manual_seed(0)
    spec = _spec(48)
    images, targets, _ = _patch_dataset(64)
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.25
    y = torch.from_numpy(targets)
    model = _tiny_cnn()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):  # full-batch epochs: a few seconds on a free CPU
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    model.eval()
    target = find_target_layer(model, None, 48)
    test_images, test_targets, boxes = _patch_dataset(16, seed=1)
    ratios, scores = [], []
    for pixels, fake, box in zip(test_images, test_targets, boxes, strict=True):
        heat, score = explain_image(model, spec, target, Image.fromarray(pixels), torch.device("cpu"), "gradcam")
        scores.append((score, fake))
        if fake:
            inside = np.zeros_like(heat, dtype=bool)
            inside[box[0]:box[0] + PATCH, box[1]:box[1] + PATCH] = True
            ratios.append(heat[inside].mean() / max(heat[~inside].mean(), 1e-6))
    accuracy = np.mean([(s > 0.5) == f for s, f in scores])
    assert accuracy >= 0.75, f"the model did not learn the patch (accuracy {accuracy:.2f})"
    assert np.median(ratios) > 3.0, f"maps inside / outside the patch: {np.round(ratios, 2)}"


# ---------------------------------------------------------------- the command


def make_run(root: Path, model: str = "test_resnet", img_size: int = 48) -> Path:
    """A run folder whose checkpoints/epoch-001 and best are a randomly initialised tiny model."""
    torch.manual_seed(0)
    net = build_network(model, pretrained=False)
    folder = root / "run" / "checkpoints"
    folder.mkdir(parents=True)
    config = timm.data.resolve_model_data_config(backbone_of(net))
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "epoch-001.safetensors"))
    sidecar = {"model": model, "num_classes": 2, "classes": ["real", "fake"], "img_size": img_size,
               "mean": list(config["mean"]), "std": list(config["std"]), "eval_crop": 1.0, "weights": "model",
               "metrics": None, "run": "run", "format": 1, "epoch": 1, "step": 1, "reason": "epoch",
               "best_metric": "auc", "metric_value": None, "is_best": True, "created": 0.0, "stem": "rgb"}
    (folder / "epoch-001.json").write_text(json.dumps(sidecar))
    (folder / "best.safetensors").symlink_to("epoch-001.safetensors")  # as the checkpoint store links best
    (folder / "best.json").symlink_to("epoch-001.json")
    return root / "run"


def test_explain_writes_maps_overlays_and_the_csv(tiny_copy: Path, capsys):
    run = make_run(tiny_copy.parent)
    (tiny_copy / "valset" / "val00003.jpg").write_bytes(b"not a jpeg")
    assert main(["explain", "--checkpoint", str(run), "--data", str(tiny_copy), "--filter", "fake", "--limit", "3",
                 "--method", "gradcam++", "--progress", "json"]) == 0
    lines = [decode_job_message(line) for line in capsys.readouterr().out.splitlines()]
    result = lines[-1]
    assert isinstance(result, ExplainResult) and result.explained == 2
    assert result.unreadable and "val00003.jpg" in result.unreadable
    out = Path(result.out_dir)
    assert out == run / "explanations" / "epoch-001-on-valset-gradcam++"
    frame = pd.read_csv(out / "explain.csv")
    assert list(frame.columns) == ["img_name", "target", "score", "map", "overlay"]
    assert frame["img_name"].tolist() == ["val00001.jpg", "val00005.jpg"] and (frame["target"] == 1).all()
    heat = np.load(out / frame["map"][0])
    with Image.open(tiny_copy / "valset" / "val00001.jpg") as img:
        assert heat.shape == (img.height, img.width)
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    with Image.open(out / frame["overlay"][0]) as overlay:
        assert overlay.size == (heat.shape[1], heat.shape[0])


def test_explain_misclassified_and_bad_input(tiny_copy: Path, tmp_path: Path, capsys):
    run = make_run(tiny_copy.parent)
    out = tmp_path / "maps"
    assert main(["explain", "--checkpoint", str(run), "--data", str(tiny_copy), "--limit", "4", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "explain.csv")
    assert 1 <= len(frame) <= 4
    wrongness = (frame["score"] - frame["target"]).abs()
    assert (wrongness > 0.5).all() and wrongness.is_monotonic_decreasing
    capsys.readouterr()
    assert main(["explain", "--checkpoint", str(run), "--data", str(tiny_copy), "--layer", "nope",
                 "--progress", "json"]) == 2
    failed = decode_job_message(capsys.readouterr().out.splitlines()[-1])
    assert isinstance(failed, JobFailed) and "--layer 'nope'" in failed.message
    assert main(["explain", "--checkpoint", str(run), "--data", str(tiny_copy), "--images", "nope.jpg"]) == 2
    assert "no image named nope.jpg" in capsys.readouterr().err
