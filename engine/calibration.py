"""Calibration and operating points: a temperature fitted on a labelled split, and thresholds at target FPRs.

A detector's AUC says nothing about which threshold to use or what its scores mean as
probabilities. ``ffdv calibrate`` fits one temperature T on a split (the probability of fake
becomes sigmoid(logit(p) / T), which keeps the ranking and so the AUC) and stores it in the
checkpoint's sidecar with the thresholds that keep the false-positive rate at 1e-3, 1e-2 and
5e-2 on that split, and the one of the best balanced accuracy.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import torchmetrics.functional.classification as F

from engine.contract.errors import FfdvError
from engine.metrics import ECE_BINS

FPR_TARGETS = (1e-3, 1e-2, 5e-2)
EPS = 1e-7
LOG_T_RANGE = (math.log(0.02), math.log(50.0))


def expected_calibration_error(scores: np.ndarray, targets: np.ndarray, bins: int = ECE_BINS) -> float | None:
    """torchmetrics' BinaryCalibrationError (L1, equal-width bins); None without images."""
    if len(scores) == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = F.binary_calibration_error(torch.as_tensor(np.asarray(scores, dtype=np.float64)),
                                           torch.as_tensor(np.asarray(targets, dtype=np.int64)), n_bins=bins, norm="l1")
    return round(float(value), 6)


def logits(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def apply_temperature(p, temperature: float) -> np.ndarray:
    """The probability of fake with the logit divided by the temperature (same order, so the same AUC)."""
    return 1.0 / (1.0 + np.exp(-logits(p) / temperature))


def nll(p: np.ndarray, targets: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    y = np.asarray(targets, dtype=np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())


def fit_temperature(p: np.ndarray, targets: np.ndarray) -> float:
    """The temperature of least NLL (golden-section search on log T: the NLL is convex in 1/T)."""
    z, y = logits(p), np.asarray(targets, dtype=np.float64)

    def loss(log_t: float) -> float:
        q = z / math.exp(log_t)
        return float(np.mean(np.logaddexp(0, q) - y * q))  # NLL of sigmoid(q), stable

    lo, hi = LOG_T_RANGE
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    for _ in range(80):
        if loss(a) < loss(b):
            hi, b = b, a
            a = hi - ratio * (hi - lo)
        else:
            lo, a = a, b
            b = lo + ratio * (hi - lo)
    return round(math.exp((lo + hi) / 2), 6)


def threshold_at_fpr(scores: np.ndarray, targets: np.ndarray, target: float) -> dict:
    """The lowest threshold (fake = score above it) whose false-positive rate on these images is at most ``target``."""
    scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets)
    reals = np.sort(scores[targets == 0])[::-1]
    allowed = int(math.floor(target * len(reals) + 1e-9))
    threshold = 0.0 if allowed >= len(reals) else float(reals[allowed])
    return _point(scores, targets, threshold)


def balanced_threshold(scores: np.ndarray, targets: np.ndarray) -> dict:
    """The threshold of the best balanced accuracy, (TPR + TNR) / 2."""
    scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets)
    candidates = np.unique(np.concatenate([[0.0], scores]))
    fakes, reals = np.sort(scores[targets == 1]), np.sort(scores[targets == 0])
    tpr = 1.0 - np.searchsorted(fakes, candidates, side="right") / len(fakes)
    tnr = np.searchsorted(reals, candidates, side="right") / len(reals)
    best = int(np.argmax(tpr + tnr))
    return _point(scores, targets, float(candidates[best]))


def _point(scores: np.ndarray, targets: np.ndarray, threshold: float) -> dict:
    called = scores > threshold
    fpr = float(called[targets == 0].mean())
    tpr = float(called[targets == 1].mean())
    return {"raw": threshold, "fpr": round(fpr, 6), "tpr": round(tpr, 6), "balanced_accuracy": round((tpr + 1 - fpr) / 2, 6)}


def calibrate(scores: np.ndarray, targets: np.ndarray, split: str) -> dict:
    """The sidecar's ``calibration`` object for these scores of a labelled split (both classes needed)."""
    scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets, dtype=np.int64)
    fakes = int((targets == 1).sum())
    if len(targets) == 0 or fakes in (0, len(targets)):
        only = "no images" if len(targets) == 0 else ("only fakes" if fakes else "only reals")
        raise FfdvError(f"{split}: calibration needs real and fake images, and this split has {only}. Fix: calibrate "
                        "on a labelled validation split that holds both classes.")
    temperature = fit_temperature(scores, targets)
    calibrated = apply_temperature(scores, temperature)
    thresholds = {f"fpr:{t:g}": threshold_at_fpr(scores, targets, t) for t in FPR_TARGETS}
    thresholds["balanced"] = balanced_threshold(scores, targets)
    for point in thresholds.values():
        point["calibrated"] = float(apply_temperature(point["raw"], temperature))  # unrounded: ties stay on their side
    return {"temperature": temperature, "ece_before": expected_calibration_error(scores, targets),
            "ece_after": expected_calibration_error(calibrated, targets), "nll_before": round(nll(scores, targets), 6),
            "nll_after": round(nll(calibrated, targets), 6), "thresholds": thresholds, "split": split,
            "images": len(targets)}
