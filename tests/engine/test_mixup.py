"""Mixup and CutMix (optim.mixup, optim.cutmix): soft targets for mixed training batches, repeatable by seed."""

from __future__ import annotations

import pytest
import torch

from engine.contract.config import load_config
from engine.mixing import make_mixup, mix_batch


def _batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.stack([torch.full((3, 8, 8), float(i)) for i in range(n)])
    y = torch.tensor([i % 2 for i in range(n)])
    return x, y


def test_mixup_is_off_by_default() -> None:
    assert make_mixup(load_config()) is None


def test_mixup_blends_each_image_with_the_reversed_batch_and_makes_soft_targets() -> None:
    mixup = make_mixup(load_config(overrides={"optim.mixup": 0.4}))
    x, y = _batch(4)
    original = x.clone()
    mixed, soft = mix_batch(mixup, x, y, seed=3)
    lam = float(soft[0, 0])  # image 0 is real (class 0): its share of class 0 is lam
    assert 0.0 < lam < 1.0 and soft.shape == (4, 2)
    assert torch.allclose(soft.sum(dim=1), torch.ones(4))
    assert not torch.equal(soft, torch.nn.functional.one_hot(y, 2).float())  # the targets are soft now
    assert torch.allclose(mixed, lam * original + (1 - lam) * original.flip(0))


def test_label_smoothing_goes_into_the_mixed_targets() -> None:
    mixup = make_mixup(load_config(overrides={"optim.mixup": 0.4, "optim.label_smoothing": 0.2}))
    assert mixup.label_smoothing == 0.2


def test_the_same_seed_mixes_the_same_way_another_differently() -> None:
    mixup = make_mixup(load_config(overrides={"optim.mixup": 0.4, "optim.cutmix": 1.0}))
    first = mix_batch(mixup, *_batch(6), seed=11)
    again = mix_batch(mixup, *_batch(6), seed=11)
    other = mix_batch(mixup, *_batch(6), seed=12)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])


def test_cutmix_pastes_a_box_and_weighs_the_targets_by_its_area() -> None:
    mixup = make_mixup(load_config(overrides={"optim.cutmix": 1.0}))
    x, y = _batch(2)
    mixed, soft = mix_batch(mixup, x, y, seed=5)
    pasted = (mixed[0] == 1.0).float().mean()  # image 0 is zeros; the box comes from image 1
    assert 0.0 < pasted < 1.0
    assert float(soft[0, 1]) == pytest.approx(float(pasted), abs=1e-6)


def test_an_odd_batch_mixes_all_but_its_last_image() -> None:
    mixup = make_mixup(load_config(overrides={"optim.mixup": 0.4}))
    x, y = _batch(5)
    mixed, soft = mix_batch(mixup, x, y, seed=1)
    assert soft.shape == (5, 2) and torch.equal(soft[4], torch.tensor([1.0, 0.0]))
    assert torch.equal(mixed[4], torch.full((3, 8, 8), 4.0))
    assert not torch.equal(mixed[0], torch.zeros(3, 8, 8))
