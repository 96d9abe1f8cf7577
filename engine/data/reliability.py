"""Reliability bins of a set of predictions: per bin of the score, its mean score and its share of fakes.

The same equal-width binning as torchmetrics' BinaryCalibrationError (15 bins; a score of
exactly 1.0 in a bin of its own), so the ECE the predictions screen shows equals the one the
engine reports. Torch-free, for the app.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 15


@dataclass(frozen=True)
class Reliability:
    counts: np.ndarray  # images per bin
    mean_score: np.ndarray  # 0 where a bin is empty
    fake_share: np.ndarray  # 0 where a bin is empty
    ece: float | None  # None without labelled images


def reliability(scores, targets, bins: int = BINS) -> Reliability:
    """Bins of the labelled images' scores (targets 0/1; others left out)."""
    scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets)
    labelled = (targets == 0) | (targets == 1)
    scores, targets = scores[labelled], targets[labelled].astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, bins)
    counts = np.bincount(index, minlength=bins + 1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.nan_to_num(np.bincount(index, weights=scores, minlength=bins + 1) / counts)
        fake_share = np.nan_to_num(np.bincount(index, weights=targets, minlength=bins + 1) / counts)
    ece = float((counts / counts.sum() * np.abs(mean_score - fake_share)).sum()) if len(scores) else None
    if counts[bins] == 0:  # no score of exactly 1.0: the extra bin is not shown
        counts, mean_score, fake_share = counts[:bins], mean_score[:bins], fake_share[:bins]
    return Reliability(counts.astype(np.int64), mean_score, fake_share, ece)
