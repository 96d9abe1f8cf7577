"""A competition submission: where it goes, what it holds, and the check it must pass.

Torch-free, so ``ffdv predict``, the matrix and the app's screens share it. A submission
has the header ``img_name,y_pred``, one row per image in the order of the split's
label/list file, ``y_pred`` the probability of fake in [0, 1]; an image that could not be
read still gets a row, with 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from engine.contract.errors import FfdvError

COLUMNS = ("img_name", "y_pred")
UNDECODABLE_SCORE = 0.5  # an image that cannot be read still needs a row; 0.5 claims nothing
SUBMISSIONS = "submissions"


class SubmissionError(FfdvError):
    """A submission that fails its check; the message names the file and what is wrong."""


def safe_stem(name: str) -> str:
    """A file name from a model or row name (letters, digits, ``._-``; the rest become ``_``)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def submission_in(folder: Path | str, name: str) -> Path:
    """``FOLDER/submissions/NAME.csv``: a run's (or a matrix's) own submissions folder."""
    return Path(folder) / SUBMISSIONS / f"{safe_stem(name)}.csv"


def default_submission(checkpoint: Path | str, split: str, label: str = "") -> Path:
    """A run's checkpoint writes into its run's submissions/ folder; any other weights file, here."""
    weights = Path(checkpoint).resolve()  # best.safetensors names the epoch it points to
    name = "-".join(part for part in (weights.stem, label, split) if part)
    if weights.parent.name == "checkpoints":
        return submission_in(weights.parent.parent, name)
    return Path(f"{safe_stem(name)}.csv")


def submission_frame(names: Sequence[str], index: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """Every image in its order; those not scored (``index`` lists the scored) get 0.5."""
    y_pred = np.full(len(names), UNDECODABLE_SCORE, dtype=np.float64)
    y_pred[index] = scores
    return pd.DataFrame({"img_name": list(names), "y_pred": np.round(y_pred, 6)})


def check_submission(path: Path | str, names: Sequence[str] | None = None) -> str:
    """Read a submission back, as a competition would: a sentence on what is there, or SubmissionError.

    With ``names``, the rows must be exactly those images in that order.
    """
    try:
        frame = pd.read_csv(path, dtype={"img_name": str}, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise SubmissionError(f"{path}: cannot read the submission back ({exc})") from None
    y_pred = pd.to_numeric(frame["y_pred"], errors="coerce") if "y_pred" in frame else None
    if tuple(frame.columns) != COLUMNS:
        problem = f"header is {','.join(map(str, frame.columns))!r}, not 'img_name,y_pred'"
    elif names is not None and frame["img_name"].tolist() != list(names):
        problem = "the rows are not the split's images in its order"
    elif not y_pred.between(0.0, 1.0).all():  # NaN and text are not between
        problem = "y_pred has values outside [0, 1]"
    elif frame["img_name"].duplicated().any():
        problem = "an image is listed twice"
    else:
        return f"{len(frame):,} rows, header img_name,y_pred, y_pred in [{y_pred.min():.3f}, {y_pred.max():.3f}]"
    raise SubmissionError(f"{path}: the submission failed its check: {problem}")
