"""Mixup and CutMix during training (timm's ``Mixup``), with the soft targets they make.

One mixing per batch (timm's batch mode: the batch blends with its own reverse), on the
normalised float batch on the device. The dice are numpy's global RNG, which timm's
Mixup draws from; it is seeded from (seed, epoch, step) before each batch, so a resumed
run mixes exactly as the uninterrupted one would.
"""

from __future__ import annotations

import numpy as np
import torch
from timm.data import Mixup
from timm.data.mixup import mixup_target

from engine.contract.config import Config

NUM_CLASSES = 2


def make_mixup(config: Config) -> Mixup | None:
    """timm's Mixup for optim.mixup / optim.cutmix (alphas; 0 is off), or None when both are off."""
    o = config.optim
    if o.mixup <= 0 and o.cutmix <= 0:
        return None
    return Mixup(mixup_alpha=o.mixup, cutmix_alpha=o.cutmix, prob=o.mixup_prob, switch_prob=0.5, mode="batch",
                 label_smoothing=o.label_smoothing, num_classes=NUM_CLASSES)


def mix_batch(mixup: Mixup, x: torch.Tensor, y: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixed images and their soft targets (N x 2). timm mixes even batches only: an odd one (an image was
    unreadable) mixes all but its last image, which keeps its own (smoothed) target."""
    np.random.seed(seed % (1 << 32))
    n = x.shape[0]
    even = n - n % 2
    if even == 0:
        return x, mixup_target(y, NUM_CLASSES, 1.0, mixup.label_smoothing)
    head, soft = mixup(x[:even], y[:even])  # in place on the view of x
    if even == n:
        return head, soft
    tail = mixup_target(y[even:], NUM_CLASSES, 1.0, mixup.label_smoothing)
    return x, torch.cat([soft, tail])
