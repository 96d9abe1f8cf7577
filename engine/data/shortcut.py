"""Does metadata alone predict the label? The shortcut audit of the health scan.

Detectors that learn the file format instead of the forgery are the most common failure
users report (reals saved as JPEG, fakes as PNG; accuracy that collapses after JPEG). For
each labelled split, a logistic regression on metadata only (format, JPEG quality, width,
height, aspect, file size, colour mode, EXIF presence) is cross-validated; its AUC says how
well a detector could do without looking at the pixels' content, and each feature alone
(``single_feature_auc``) says which features carry it. Above ``WARN_AUC`` the scan warns and points at
the matrix rows that remove the shortcut (``jpeg:Q`` re-encodes both classes).

Plain numpy (Newton's method on a few standardised columns): the scan runs in the app's
worker as well as in ``ffdv scan``, and the app must not load scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.data.slices import roc_auc

WARN_AUC = 0.6
FOLDS = 5
MAX_ROWS = 20_000  # per split: a random sample beyond this (the question is yes or no)
FEATURES = ("format", "jpeg quality", "width", "height", "aspect", "file size", "colour mode", "exif")
CATEGORICAL = frozenset({"format", "colour mode", "exif", "jpeg quality"})
FIX_ROWS = ("jpeg:90", "jpeg:75")
NEWTON_STEPS = 12  # enough for a ranking; more only sharpens separable data


@dataclass
class MetaRows:
    """One labelled split's per-image metadata, collected while the scan opens each image."""

    target: list[int] = field(default_factory=list)
    format: list[str] = field(default_factory=list)
    quality: list[int | None] = field(default_factory=list)
    width: list[int] = field(default_factory=list)
    height: list[int] = field(default_factory=list)
    file_size: list[int] = field(default_factory=list)
    mode: list[str] = field(default_factory=list)
    exif: list[bool] = field(default_factory=list)

    def add(self, target: int, fmt: str, quality: int | None, width: int, height: int, size: int, mode: str,
            exif: bool) -> None:
        for column, value in zip(("target", "format", "quality", "width", "height", "file_size", "mode", "exif"),
                                 (target, fmt, quality, width, height, size, mode, exif)):
            getattr(self, column).append(value)

    def __len__(self) -> int:
        return len(self.target)

    def subset(self, keep) -> MetaRows:
        columns = (self.target, self.format, self.quality, self.width, self.height, self.file_size, self.mode,
                   self.exif)
        return MetaRows(*([column[i] for i in keep] for column in columns))


def _values(rows: MetaRows, feature: str) -> np.ndarray:
    """One feature's values: text for the categorical ones, float for the others."""
    if feature == "format":
        return np.asarray(rows.format, dtype=object)
    if feature == "colour mode":
        return np.asarray(rows.mode, dtype=object)
    if feature == "exif":
        return np.asarray(["EXIF" if e else "no EXIF" for e in rows.exif], dtype=object)
    if feature == "jpeg quality":
        return np.asarray([f"Q{q}" if q is not None else ("unknown" if f in ("JPEG", "MPO") else "not JPEG")
                           for q, f in zip(rows.quality, rows.format)], dtype=object)
    width, height = np.asarray(rows.width, dtype=np.float64), np.asarray(rows.height, dtype=np.float64)
    if feature == "width":
        return width
    if feature == "height":
        return height
    if feature == "aspect":
        return np.log(np.maximum(width, 1) / np.maximum(height, 1))
    return np.log1p(np.asarray(rows.file_size, dtype=np.float64))


def _columns(rows: MetaRows, feature: str) -> np.ndarray:
    """The design columns of one feature: one-hot for categories (JPEG quality also as a number), log for sizes."""
    values = _values(rows, feature)
    if feature in CATEGORICAL:
        levels = sorted(set(values.tolist()))
        onehot = np.stack([values == level for level in levels[1:]], axis=1).astype(np.float64) if len(levels) > 1 \
            else np.zeros((len(values), 0))
        if feature == "jpeg quality":
            number = np.asarray([q if q is not None else 0 for q in rows.quality], dtype=np.float64)[:, None]
            onehot = np.hstack([onehot, number])
        return onehot
    return (np.log1p(values) if feature in ("width", "height") else values)[:, None]


def _fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, l2: float = 1e-2) -> np.ndarray:
    """Scores of a ridge-penalised logistic regression (Newton's method) on standardised columns."""
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0
    a = np.hstack([(x_train - mean) / std, np.ones((len(x_train), 1))])
    b = np.hstack([(x_test - mean) / std, np.ones((len(x_test), 1))])
    w = np.zeros(a.shape[1])
    penalty = l2 * np.eye(a.shape[1])
    penalty[-1, -1] = 0.0
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -30, 30)))
        gradient = a.T @ (p - y_train) / len(a) + penalty @ w
        hessian = (a * (p * (1 - p))[:, None]).T @ a / len(a) + penalty + 1e-9 * np.eye(a.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return b @ w


def _folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold number per image, stratified by class."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for cls in (0, 1):
        where = np.flatnonzero(y == cls)
        fold[rng.permutation(where)] = np.arange(len(where)) % folds
    return fold


def cross_validated_auc(x: np.ndarray, y: np.ndarray, folds: int = FOLDS, seed: int = 0) -> float | None:
    """AUC of out-of-fold scores (folds stratified by class); None with fewer than ``folds`` images of a class."""
    if np.bincount(y, minlength=2).min() < folds:
        return None
    if x.shape[1] == 0:  # a feature with one value for every image tells nothing
        return 0.5
    fold = _folds(y, folds, seed)
    scores = np.empty(len(y))
    for k in range(folds):
        test = fold == k
        scores[test] = _fit_predict(x[~test], y[~test], x[test])
    return roc_auc(scores, y)


def single_feature_auc(values: np.ndarray, y: np.ndarray, categorical: bool, folds: int = FOLDS,
                       seed: int = 0) -> float | None:
    """What one feature alone tells: a category's out-of-fold share of fakes (target encoding, what a model of that
    feature alone learns), or a number's AUC in the better direction (one parameter cannot overfit)."""
    if np.bincount(y, minlength=2).min() < folds:
        return None
    if not categorical:
        auc = roc_auc(values, y)
        return None if auc is None else max(auc, 1.0 - auc)
    fold = _folds(y, folds, seed)
    scores = np.empty(len(y))
    for k in range(folds):
        test = fold == k
        train_values, train_y = values[~test], y[~test]
        levels, inverse = np.unique(train_values.astype(str), return_inverse=True)
        share = dict(zip(levels, np.bincount(inverse, weights=train_y) / np.bincount(inverse)))
        prior = float(train_y.mean())
        scores[test] = [share.get(v, prior) for v in values[test].astype(str)]
    return roc_auc(scores, y)


def _detail(rows: MetaRows, feature: str, y: np.ndarray) -> str:
    """What tells the classes apart: each class's most common value (categories) or median (numbers)."""
    values = _values(rows, feature)
    parts = []
    for cls, label in ((1, "fakes"), (0, "reals")):
        own = values[y == cls]
        if feature in CATEGORICAL:
            kinds, counts = np.unique(own.astype(str), return_counts=True)
            top = int(np.argmax(counts))
            parts.append(f"{label} {kinds[top]} ({counts[top] / len(own):.0%})")
        else:
            median = float(np.median(own))
            shown = np.expm1(median) if feature == "file size" else np.exp(median) if feature == "aspect" else median
            unit = " bytes" if feature == "file size" else " px" if feature in ("width", "height") else ""
            parts.append(f"{label} median {shown:,.0f}{unit}" if feature != "aspect" else
                         f"{label} median {shown:.2f}")
    return ", ".join(parts)


def audit_split(rows: MetaRows, seed: int = 0) -> dict:
    """The cross-validated AUC of all features, and of each feature alone (those above WARN_AUC first)."""
    y = np.asarray(rows.target, dtype=np.int64)
    if len(y) > MAX_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(len(y), MAX_ROWS, replace=False))
        rows, y = rows.subset(keep.tolist()), y[keep]
    columns = {feature: _columns(rows, feature) for feature in FEATURES}
    auc = cross_validated_auc(np.hstack(list(columns.values())), y, seed=seed)
    features = []
    for feature in FEATURES:
        alone = single_feature_auc(_values(rows, feature), y, feature in CATEGORICAL, seed=seed)
        if alone is not None:
            features.append({"feature": feature, "auc": round(alone, 4), "detail": _detail(rows, feature, y)})
    features.sort(key=lambda f: -f["auc"])
    return {"auc": None if auc is None else round(auc, 4), "images": len(y), "features": features}


def shortcut_result(per_split: dict[str, MetaRows]) -> dict:
    """The scan's ``shortcut`` result: per labelled split, the worst AUC, the warning and what to do."""
    splits = {name: audit_split(rows) for name, rows in per_split.items() if len(rows)}
    scored = {name: s for name, s in splits.items() if s["auc"] is not None}
    if not scored:
        return {"auc": None, "warning": False, "features": [], "splits": splits,
                "message": "no labelled split with at least 5 images of each class: not audited"}
    worst = max(scored, key=lambda name: scored[name]["auc"])
    auc = scored[worst]["auc"]
    carriers = [f for f in scored[worst]["features"] if f["auc"] > WARN_AUC]
    warning = auc > WARN_AUC
    if warning:
        why = "; ".join(f"{f['feature']}: {f['detail']}" for f in carriers[:3]) or "several features together"
        message = (f"{worst}: metadata alone tells fakes from reals (AUC {auc:.2f}; {why}): a detector can score well "
                   "here without looking at the forgery. Judge it on matrix rows that remove the shortcut: "
                   f"ffdv evaluate --perturb {' '.join(FIX_ROWS)} (jpeg:Q re-encodes both classes).")
    else:
        message = f"metadata alone does not predict the label (AUC {auc:.2f} at most, in {worst})"
    return {"auc": auc, "warning": warning, "features": [f["feature"] for f in carriers], "split": worst,
            "splits": splits, "message": message, "rows": list(FIX_ROWS) if warning else []}
