"""ROC curves from per-image predictions, in numpy (torch-free: the app draws them).

``roc_curve`` follows scikit-learn's algorithm point for point (the same thresholds, the same
dropped collinear points), so a curve drawn here is the one a researcher gets in a notebook;
the tests hold it to scikit-learn's own output. scikit-learn is not a dependency of the app.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.contract.errors import FfdvError

COMPETITION_FPR = 1e-3  # the competition's tie-break: TPR at FPR = 1e-3


@dataclass(frozen=True)
class Roc:
    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray

    def sampled(self, points: int = 400, lowest: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
        """The curve at FPR 0 and ``points`` FPRs spaced evenly on a log axis from ``lowest`` to 1 (the best TPR
        at each): what a plot of a 147k-image curve needs, in a few hundred points."""
        xs = np.r_[0.0, np.logspace(np.log10(lowest), 0.0, points)]
        index = np.searchsorted(self.fpr, xs, side="right") - 1
        return xs, self.tpr[np.clip(index, 0, None)]

    def tpr_at(self, fpr: float) -> float:
        """The best TPR whose FPR does not exceed ``fpr`` (the competition's reading of the curve)."""
        allowed = self.tpr[self.fpr <= fpr]
        return float(allowed.max()) if allowed.size else 0.0


@dataclass(frozen=True)
class Predictions:
    """One validation's per-image predictions: names, targets (1 = fake) and scores."""

    names: np.ndarray  # of str
    targets: np.ndarray
    scores: np.ndarray

    @property
    def split_key(self) -> str:
        """Which images were judged (a digest of their sorted names): the same key, the same validation split."""
        digest = hashlib.sha1("\n".join(np.sort(self.names.astype(str)).tolist()).encode("utf-8", "replace"))
        return digest.hexdigest()[:16]


def roc_curve(targets: np.ndarray, scores: np.ndarray, drop_intermediate: bool = True) -> Roc:
    """False and true positive rates at every distinct threshold, as ``sklearn.metrics.roc_curve``."""
    y = np.asarray(targets).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(s, kind="mergesort")[::-1]
    s, y = s[order], y[order]
    distinct = np.where(np.diff(s))[0]
    ends = np.r_[distinct, y.size - 1]
    tps = np.cumsum(y)[ends].astype(np.float64)
    fps = 1 + ends - tps
    thresholds = s[ends]
    if drop_intermediate and fps.size > 2:
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    thresholds = np.r_[np.inf, thresholds]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return Roc(fpr, tpr, thresholds)


def read_predictions(path: Path | str) -> Predictions:
    """A run's ``predictions/epoch-NNN.csv`` (img_name, target, score, ...); a damaged one names its line.

    pandas' C reader: an FFDI validation (147k rows) in a fraction of a second, where the csv module took seconds.
    """
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={"img_name": object}, keep_default_na=False, low_memory=False)
    except OSError as exc:
        raise FfdvError(f"{path}: cannot read the predictions ({exc.strerror or exc}).") from None
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        raise FfdvError(f"{path}: not a predictions table ({reason}). "
                        "Fix: delete it and evaluate the checkpoint again.") from None
    missing = {"img_name", "target", "score"} - set(frame.columns)
    if missing:
        raise FfdvError(f"{path}: line 1: the header lacks {', '.join(sorted(missing))}. "
                        "Fix: a predictions file has img_name,target,score columns.")
    targets = pd.to_numeric(frame["target"], errors="coerce")
    scores = pd.to_numeric(frame["score"], errors="coerce")
    bad = (targets.isna() | scores.isna()).to_numpy().nonzero()[0]
    if bad.size:
        raise FfdvError(f"{path}: line {int(bad[0]) + 2}: target and score must be numbers. "
                        "Fix: rewrite the file, or delete it and evaluate the checkpoint again.")
    return Predictions(frame["img_name"].to_numpy(dtype=object), targets.to_numpy(dtype=np.int8),
                       scores.to_numpy(dtype=np.float64))
