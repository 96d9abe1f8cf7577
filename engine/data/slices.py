"""Predictions grouped by a slice (source, format, JPEG quality, size bucket, an extra label column).

A detector's AUC over the whole split can hide a slice it fails on (one generator, the PNGs,
JPEG quality 65). Torch-free: the predictions screen computes these in a worker.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.metadata import read_meta

FACT_COLUMNS = ("format", "jpeg quality", "size")  # read from the image files (image_facts)
CORE_COLUMNS = frozenset({"img_name", "target", "score", "pred", "correct", "epoch"})
MAX_SLICES = 200  # a column with more distinct values (an id, a path) is no slice


def roc_auc(scores: np.ndarray, targets: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half), or None unless both classes are present."""
    targets = np.asarray(targets)
    positives = int((targets == 1).sum())
    negatives = int((targets == 0).sum())
    if not positives or not negatives:
        return None
    labelled = (targets == 0) | (targets == 1)
    ranks = pd.Series(np.asarray(scores, dtype=np.float64)[labelled]).rank(method="average").to_numpy()
    pos_ranks = ranks[targets[labelled] == 1].sum()
    return float((pos_ranks - positives * (positives + 1) / 2) / (positives * negatives))


def image_facts(folder: Path | None, names) -> pd.DataFrame:
    """Format, JPEG quality and size bucket of each image (headers only), "unknown" without the folder."""
    names = list(names)
    if folder is None or not Path(folder).is_dir():
        return pd.DataFrame({c: ["unknown"] * len(names) for c in FACT_COLUMNS})
    metas = [read_meta(Path(folder) / str(n)) for n in names]
    return pd.DataFrame({"format": [m.format for m in metas], "jpeg quality": [m.quality_label for m in metas],
                         "size": [m.size_bucket for m in metas]})


def slice_columns(frame: pd.DataFrame) -> list[str]:
    """The columns a frame can be sliced by: source first, the image facts, then any other text column."""
    out = [c for c in ("source", *FACT_COLUMNS) if c in frame.columns]
    for column in frame.columns:
        if column not in CORE_COLUMNS and column not in out and frame[column].nunique() <= MAX_SLICES:
            out.append(str(column))
    return out


def slice_metrics(frame: pd.DataFrame, column: str, threshold: float) -> pd.DataFrame:
    """One row per value of ``column``: images, fake share, AUC, accuracy at ``threshold``; the worst flagged.

    The worst slice is the one with the lowest AUC (accuracy where no slice has an AUC)."""
    rows = []
    labelled = frame[frame["target"] >= 0]
    for value, group in labelled.groupby(labelled[column].astype(str), sort=True):
        scores, targets = group["score"].to_numpy(), group["target"].to_numpy()
        rows.append({"slice": value, "images": len(group), "fake share": float(targets.mean()),
                     "auc": roc_auc(scores, targets), "accuracy": float(((scores > threshold) == targets).mean())})
    table = pd.DataFrame(rows, columns=["slice", "images", "fake share", "auc", "accuracy"])
    key = "auc" if table["auc"].notna().any() else "accuracy"
    table["worst"] = False
    if len(table) > 1 and table[key].notna().any():
        table.loc[table[key].astype(float).idxmin(), "worst"] = True
    return table
