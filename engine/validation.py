"""One validation of a run: its model's scores on the val split, every rank's unreadable images, the metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.bad_images import BadImages
from engine.contract.protocol import clean_number
from engine.distributed import DistContext, gather_objects
from engine.inference import Scores, score_batches
from engine.metrics import detection_metrics
from engine.models import plain_module
from engine.train_parts import TrainingParts


@dataclass
class Validation:
    """What one validation returns: the metrics (null where undefined) and the per-image scores behind them."""

    metrics: dict[str, Any]
    scores: Scores


def eval_model(p: TrainingParts, dist: DistContext) -> torch.nn.Module:
    """EMA weights when kept; under DDP the bare module (evaluation needs no collectives)."""
    if p.ema is not None:
        return p.ema.module
    return plain_module(p.model) if dist.enabled else p.forward_model


def validate(p: TrainingParts, dist: DistContext, bad_images: BadImages) -> Validation:
    p.loaders.val_sampler.set_epoch(0)
    scores: Scores = score_batches(eval_model(p, dist), p.loaders.val, p.loaders.normalizer, p.device,
                                   reduce=p.spec.eval_reduce)
    for bad in gather_objects(dist, scores.bad):
        scores.bad.update(bad)
    if scores.bad:
        bad_images.note(p.val_split, scores.bad)
    metrics = detection_metrics(torch.from_numpy(scores.score), torch.from_numpy(scores.target))
    metrics["loss"] = scores.mean_loss()
    metrics = {k: (clean_number(v) if isinstance(v, float) else v) for k, v in metrics.items()}
    return Validation(metrics, scores)
