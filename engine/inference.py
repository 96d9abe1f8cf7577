"""Scoring every image of a split: shared by validation during training, ``evaluate`` and ``predict``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from engine.data.dataset import Split
from engine.device import DeviceSetup
from engine.loader import Batch, DeviceNormalizer
from engine.metrics import PredictionCollector


@dataclass
class Scores:
    """Per-image results in split order; images that could not be decoded are in ``bad`` instead."""

    index: np.ndarray  # positions in the split
    score: np.ndarray  # probability of fake
    target: np.ndarray  # 0/1, or -1 for an unlabelled split
    loss: np.ndarray  # cross-entropy per image (0 when unlabelled)
    bad: dict[int, str]

    def mean_loss(self) -> float | None:
        labelled = self.target >= 0
        return float(self.loss[labelled].mean()) if labelled.any() else None


CROP_FLOOR = 1e-7  # the loss of a multi-crop score: -log of the probability, floored so it stays finite


def reduce_crops(probs: torch.Tensor, crops: int, reduce: str) -> torch.Tensor:
    """Probabilities of fake of N*K crops (consecutive per image) -> one per image: their mean, or their max (a local
    forgery shows in some crops only)."""
    per_image = probs.view(-1, crops)
    return per_image.amax(dim=1) if reduce == "max" else per_image.mean(dim=1)


def image_scores(logits: torch.Tensor, targets: torch.Tensor, crops: int, reduce: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Probability of fake and cross-entropy per image (0 loss when unlabelled) from the logits of its crops."""
    logits = logits.float()
    labelled = targets >= 0
    if crops == 1:
        losses = F.cross_entropy(logits, targets.clamp(min=0), reduction="none") * labelled
        return logits.softmax(dim=1)[:, 1], losses
    probs = reduce_crops(logits.softmax(dim=1)[:, 1], crops, reduce)
    p = probs.clamp(CROP_FLOOR, 1.0 - CROP_FLOOR)
    losses = torch.where(targets == 1, -torch.log(p), -torch.log1p(-p)) * labelled
    return probs, losses


def score_batches(
    model: nn.Module,
    batches,
    normalizer: DeviceNormalizer,
    setup: DeviceSetup,
    on_batch: Callable[[int], None] | None = None,
    reduce: str = "mean",
) -> Scores:
    """Run the model over the batches (inference mode, the run's precision) and gather every rank's scores.

    A batch of K crops per image (N x K x H x W x 3) gives one score per image, ``reduce`` of its crops'."""
    collector = PredictionCollector(setup.device)
    bad: dict[int, str] = {}
    model.eval()
    with torch.inference_mode():
        for batch in batches:
            batch: Batch
            bad.update(batch.bad)
            if batch.images.shape[0]:
                crops = batch.images.shape[1] if batch.images.dim() == 5 else 1
                with setup.autocast():
                    logits = model(normalizer(batch.images))
                targets = batch.targets.to(setup.device, non_blocking=True)
                probs, losses = image_scores(logits, targets, crops, reduce)
                collector.update(batch.indices.to(setup.device), probs, targets, losses)
            if on_batch is not None:
                on_batch(int(batch.images.shape[0]) + len(batch.bad))
    values = collector.compute()
    return Scores(
        index=values["index"].numpy(),
        score=values["score"].numpy().astype(np.float64),
        target=values["target"].numpy(),
        loss=values["loss"].numpy().astype(np.float64),
        bad=bad,
    )


def predictions_frame(split: Split, scores: Scores, threshold: float = 0.5) -> pd.DataFrame:
    """img_name,target,score,pred (then source and any extra column of the split) in split order: the per-image
    predictions file of the run folder."""
    names = np.asarray(split.names, dtype=object)[scores.index]
    frame = pd.DataFrame(
        {
            "img_name": names,
            "target": scores.target,
            "score": np.round(scores.score, 6),
            "pred": (scores.score > threshold).astype(np.int64),  # as torchmetrics and argmax: fake above it
        }
    )
    for column, values in split.extra.items():  # source and a label file's other columns: the slices of the app
        if column not in frame.columns:
            frame[column] = np.asarray(values, dtype=object)[scores.index]
    return frame
