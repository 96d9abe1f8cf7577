"""Native-resolution crops (data.crop = "native"): training crops are the image's own pixels, and evaluation scores
each image once, from a grid of crops, as the mean (or max) of the crops' probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.checkpoint_loading import inference_setup
from engine.data.dataset import Split
from engine.inference import score_batches
from engine.loader import (
    DeviceNormalizer,
    EpochSampler,
    GridCrops,
    ImageDataset,
    ImageSpec,
    collate,
    eval_transform,
    make_loader,
    train_transform,
)
from engine.models import build_network

SPEC = ImageSpec(img_size=32, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), crop="native", eval_grid=2)


def _image(h: int, w: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_grid_crops_reach_every_corner_at_full_resolution() -> None:
    img = _image(70, 90)
    pixels = np.asarray(img)
    crops = GridCrops(32, 3)(img).numpy()
    assert crops.shape == (9, 32, 32, 3) and crops.dtype == np.uint8
    assert np.array_equal(crops[0], pixels[:32, :32]) and np.array_equal(crops[8], pixels[-32:, -32:])
    assert np.array_equal(crops[4], pixels[19:51, 29:61])  # the middle one, centred


def test_a_grid_of_one_is_the_centre_crop() -> None:
    img = _image(70, 90)
    crops = GridCrops(32, 1)(img).numpy()
    assert crops.shape == (1, 32, 32, 3) and np.array_equal(crops[0], np.asarray(img)[19:51, 29:61])


def test_a_small_image_is_padded_around_its_centre() -> None:
    img = _image(20, 40)
    crops = GridCrops(32, 2)(img).numpy()
    assert crops.shape == (4, 32, 32, 3)
    assert np.array_equal(crops[0][6:26, :32], np.asarray(img)[:, :32])
    assert not crops[0][:6].any() and not crops[0][26:].any()


def test_a_native_training_crop_is_the_images_own_pixels(tmp_path: Path) -> None:
    img = _image(60, 80, seed=2)
    transform, decode = train_transform(SPEC, "none")
    assert decode == 0  # decoded at full size: no JPEG draft reduction
    torch.manual_seed(1)
    crop = transform(img).numpy()
    pixels = np.asarray(img)
    assert crop.shape == (32, 32, 3)
    found = [(y, x) for y in range(60 - 31) for x in range(80 - 31) if np.array_equal(pixels[y:y + 32, x:x + 32], crop)]
    assert found, "a native crop must be an exact window of the image, never resampled"


def _split(tmp_path: Path, n: int) -> Split:
    names = []
    for i in range(n):
        name = f"img{i}.png"
        _image(40 + 7 * i, 50 + 3 * i, seed=i).save(tmp_path / name)
        names.append(name)
    return Split(name="val", folder=tmp_path, names=names, targets=np.array([i % 2 for i in range(n)]))


@pytest.mark.parametrize("reduce", ["mean", "max"])
def test_each_image_is_scored_once_as_the_reduction_of_its_crops(tmp_path: Path, reduce: str) -> None:
    spec = ImageSpec(**{**SPEC.__dict__, "eval_reduce": reduce})
    split = _split(tmp_path, 5)
    transform, decode = eval_transform(spec)
    dataset = ImageDataset(split, transform, decode)
    # a padded repeat of image 0, as DistributedSampler adds to even out the ranks' shares
    keys = [(i, 0) for i in range(5)] + [(0, 0)]
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, sampler=keys,
                                         collate_fn=collate)
    setup = inference_setup("cpu")
    torch.manual_seed(0)
    model = build_network("test_resnet", "rgb").eval()
    normalizer = DeviceNormalizer(spec, setup.device, False)
    scores = score_batches(model, loader, normalizer, setup, reduce=reduce)
    assert list(scores.index) == [0, 1, 2, 3, 4]
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    for i in range(5):
        crops = GridCrops(32, 2)(Image.open(tmp_path / split.names[i]).convert("RGB"))
        x = (crops.permute(0, 3, 1, 2).float() / 255.0 - mean) / std
        with torch.inference_mode():
            probs = model(x).softmax(dim=1)[:, 1].double()
        by_hand = probs.max() if reduce == "max" else probs.mean()
        assert scores.score[i] == pytest.approx(float(by_hand), abs=1e-5), i
        p = float(by_hand)
        assert scores.loss[i] == pytest.approx(-np.log(p if split.targets[i] == 1 else 1 - p), abs=1e-4)


def test_the_loader_keeps_crops_uint8_until_the_device(tmp_path: Path) -> None:
    split = _split(tmp_path, 3)
    transform, decode = eval_transform(SPEC)
    dataset = ImageDataset(split, transform, decode)
    batch = next(iter(make_loader(dataset, EpochSampler(3, False, 0), 3, 0, False)))
    assert batch.images.dtype == torch.uint8 and batch.images.shape == (3, 4, 32, 32, 3)
    x = DeviceNormalizer(SPEC, torch.device("cpu"), True)(batch.images)
    assert x.shape == (12, 3, 32, 32) and x.dtype == torch.float32
