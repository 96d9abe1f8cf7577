"""Pseudo-fakes (data.pseudo_fakes): a real image blended with a changed copy of itself under a soft mask becomes a
fake; only the masked region changes, the mask is soft and of a bounded area, and a sample's seed decides it all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.contract.config import Config, check_config
from engine.contract.errors import ConfigError, DataError
from engine.data.dataset import Split
from engine.data.self_blend import AREA_RANGE, MIN_SIDE, check_pseudo_fakes, pseudo_fake, self_blend, soft_mask
from engine.loader import ImageDataset, ImageSpec, train_transform


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth picture with some texture (a blend of a flat image with itself would change nothing visible)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 100 * np.sin(x / (5 + c) + y / (7 + c)) for c in range(3)], axis=-1)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", range(12))
def test_the_blend_changes_only_the_masked_region(seed: int) -> None:
    pixels = _photo(64, 80, seed)
    out, mask, blend = self_blend(pixels, np.random.default_rng(seed))
    assert out.shape == pixels.shape and out.dtype == np.uint8
    outside = mask == 0
    assert outside.any() and np.array_equal(out[outside], pixels[outside])  # bit-equal outside the support
    assert (out[~outside] != pixels[~outside]).any(), blend  # and changed inside it


@pytest.mark.parametrize("size", [(16, 16), (40, 90), (128, 128), (300, 200)])
def test_the_mask_is_soft_and_its_area_in_range(size: tuple[int, int]) -> None:
    for seed in range(20):
        mask, shape = soft_mask(np.random.default_rng(seed), *size)
        assert mask.shape == size and mask.dtype == np.float32
        assert AREA_RANGE[0] <= float(mask.mean()) <= AREA_RANGE[1], (seed, shape, float(mask.mean()))
        assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0
        between = (mask > 0.05) & (mask < 0.95)
        assert between.any(), f"seed {seed}: a hard {shape} mask"  # a soft edge, not a cut-out


def test_the_same_seed_makes_the_same_pseudo_fake_and_another_seed_another() -> None:
    img = Image.fromarray(_photo(72, 72))
    first, again, other = pseudo_fake(img, 7), pseudo_fake(img, 7), pseudo_fake(img, 8)
    assert first is not None and again is not None and other is not None
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))


def test_an_image_too_small_to_blend_stays_as_it_is() -> None:
    assert pseudo_fake(Image.fromarray(_photo(MIN_SIDE - 1, 40)), 0) is None
    with pytest.raises(ValueError, match="too small"):
        self_blend(_photo(8, 8), np.random.default_rng(0))


def _split(tmp_path: Path, targets: list[int]) -> Split:
    folder = tmp_path / "trainset"
    folder.mkdir()
    names = []
    for i, _ in enumerate(targets):
        Image.fromarray(_photo(48, 48, i)).save(folder / f"{i}.png")
        names.append(f"{i}.png")
    return Split("train", folder, names, np.asarray(targets, dtype=np.int64))


def test_the_loader_labels_pseudo_fakes_fake_and_a_resumed_run_sees_the_same(tmp_path: Path) -> None:
    split = _split(tmp_path, [0, 0, 0, 0, 1, 1])
    transform, decode = train_transform(ImageSpec(32, (0.5,) * 3, (0.25,) * 3), "none")
    plain = ImageDataset(split, transform, decode, seed=3)
    blended = ImageDataset(split, transform, decode, seed=3, pseudo_fakes=1.0)
    for index in range(6):
        image, target, _, reason = blended[(index, 2)]
        assert reason == "" and target == 1  # every real became a fake, the fakes stayed fakes
        if index < 4:
            assert not torch.equal(image, plain[(index, 2)][0])
    resumed = ImageDataset(split, transform, decode, seed=3, pseudo_fakes=1.0)  # a fresh loader, as after a resume
    for index in range(6):
        assert torch.equal(resumed[(index, 2)][0], blended[(index, 2)][0])
    half = ImageDataset(split, transform, decode, seed=3, pseudo_fakes=0.5)
    made = [half[(index, epoch)][1] for epoch in range(8) for index in range(4)]
    assert 0 < sum(made) < len(made)  # some reals became fakes, some stayed real
    off = ImageDataset(split, transform, decode, seed=3, pseudo_fakes=0.0)
    assert [off[(i, 0)][1] for i in range(6)] == [0, 0, 0, 0, 1, 1]
    assert all(torch.equal(off[(i, 0)][0], plain[(i, 0)][0]) for i in range(6))  # off draws nothing: same augmentation


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    config = Config()
    config.data.pseudo_fakes = share
    with pytest.raises(ConfigError, match="pseudo_fakes"):
        check_config(config)


def test_a_training_split_without_real_images_is_refused_for_pseudo_fakes(tmp_path: Path) -> None:
    split = _split(tmp_path, [1, 1, 1])
    check_pseudo_fakes(0.0, split)  # off: nothing to check
    with pytest.raises(DataError, match="no real image"):
        check_pseudo_fakes(0.5, split)
