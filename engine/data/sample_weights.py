"""Up-weighting chosen training images (``data.sample_weights``): a CSV of ``img_name[,weight]``.

Torch-free. A listed image is drawn ``weight`` times per epoch (2 without a weight column): the
hard examples of a run (``ffdv hard``) fine-tuned on more often, without touching the loss, so
mixup, cutmix, accumulation and resuming mid-epoch work unchanged. Weights are whole numbers
from 1 to 100.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.contract.errors import DataError
from engine.data.dataset import Split

DEFAULT_WEIGHT = 2
MAX_WEIGHT = 100


def read_sample_weights(path: Path | str, split: Split) -> np.ndarray:
    """How many times each image of ``split`` is drawn per epoch (1 for images the file does not list)."""
    path = Path(path)
    fix = "Fix: write img_name[,weight] lines, e.g. the CSV of `ffdv hard`, with names of the training split."
    try:
        frame = pd.read_csv(path, dtype={"img_name": str}, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"{path}: data.sample_weights names no file. {fix}") from None
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a CSV ({exc}). {fix}") from None
    if "img_name" not in frame.columns:
        raise DataError(f"{path}: line 1 has no img_name column (it has {', '.join(map(str, frame.columns))}). {fix}")
    weights = frame["weight"] if "weight" in frame.columns else pd.Series(DEFAULT_WEIGHT, index=frame.index)
    numbers = pd.to_numeric(weights, errors="coerce")
    bad = frame.index[~(numbers.between(1, MAX_WEIGHT) & (numbers == numbers.round()))]
    if len(bad):
        line = int(bad[0]) + 2
        raise DataError(f"{path}, line {line}: weight {weights[bad[0]]!r} is not a whole number from 1 to {MAX_WEIGHT}. "
                        f"{fix}")
    where = {name: i for i, name in enumerate(split.names)}
    missing = [(int(i) + 2, n) for i, n in frame["img_name"].items() if n not in where]
    if missing:
        shown = ", ".join(f"line {line}: {name!r}" for line, name in missing[:5])
        raise DataError(f"{path}: {len(missing)} names are not images of the training split {split.folder} ({shown}). "
                        f"{fix}")
    repeats = np.ones(len(split), dtype=np.int64)
    for name, weight in zip(frame["img_name"], numbers.astype(int), strict=True):
        repeats[where[name]] = weight
    return repeats


def weighted_images(repeats: np.ndarray | None, split: Split) -> dict[str, int]:
    """The images drawn more (or other) than once per epoch, with their weights: what a checkpoint's sidecar records."""
    if repeats is None:
        return {}
    return {split.names[i]: int(repeats[i]) for i in np.flatnonzero(repeats != 1)}
