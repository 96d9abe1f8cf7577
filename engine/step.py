"""What one training step computes, apart from the loop that repeats it (as timm's ``task/`` keeps them apart).

No events, no commands, no host-device sync: the loop in ``engine/train.py`` decides
when to step, report and stop; these functions only move the model.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from timm.loss import SoftTargetCrossEntropy

from engine.loader import Batch
from engine.mixing import mix_batch
from engine.models import plain_module
from engine.train_parts import TrainingParts

SOFT_TARGET_LOSS = SoftTargetCrossEntropy()


def forward_backward(parts: TrainingParts, batch: Batch, accumulating: bool, ddp: bool, accum_steps: int,
                     label_smoothing: float, mix_seed: int = 0) -> torch.Tensor:
    """Loss of one batch (detached, on the device); its gradients added to the parameters'. With mixup or cutmix
    on, the batch is mixed and the loss is the soft-target cross-entropy (label smoothing is in the targets)."""
    device = parts.device
    x = parts.loaders.normalizer(batch.images)
    y = batch.targets.to(device.device, non_blocking=True)
    soft = None
    if parts.mixup is not None:
        x, soft = mix_batch(parts.mixup, x, y, mix_seed)
    # DDP all-reduces gradients only on the step that applies them
    with parts.model.no_sync() if ddp and accumulating else contextlib.nullcontext():
        with device.autocast():
            logits = parts.forward_model(x)
            if soft is None:
                loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
            else:
                loss = SOFT_TARGET_LOSS(logits.float(), soft)
        parts.scaler.scale(loss / accum_steps).backward()
    return loss.detach()


def empty_ddp_step(parts: TrainingParts) -> None:
    """This rank's batch had only unreadable images: contribute zero gradients to the all-reduce."""
    size = parts.spec.img_size
    x = torch.zeros(1, 3, size, size, device=parts.device.device)
    if parts.device.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with parts.device.autocast():
        (parts.forward_model(x).float().sum() * 0.0).backward()


def optimizer_step(parts: TrainingParts, clip_grad: float, num_updates: int) -> None:
    """Apply the accumulated gradients; ``num_updates`` counts this update (the scheduler and EMA follow it)."""
    if clip_grad > 0:
        parts.scaler.unscale_(parts.optimizer)
        torch.nn.utils.clip_grad_norm_(parts.model.parameters(), clip_grad)
    parts.scaler.step(parts.optimizer)
    parts.scaler.update()
    parts.optimizer.zero_grad(set_to_none=True)
    parts.scheduler.step_update(num_updates)
    if parts.ema is not None:
        parts.ema.update(plain_module(parts.model), step=num_updates)
