"""Per-image predictions of a validation: filters, sorting, search and metrics at any threshold.

Plain numpy and pandas over the run's ``predictions/epoch-NNN.csv`` (img_name, target,
score, pred): filtering and sorting 150,000 rows takes milliseconds, so the screen
recomputes on every keystroke in a worker and draws only the visible rows. An image is
called fake when its score is above the threshold, as the engine's metrics do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

FILTERS = {
    "all": "all",
    "misclassified": "misclassified",
    "fp": "false positives (real called fake)",
    "fn": "false negatives (fake called real)",
    "uncertain": "uncertain (score near the threshold)",
    "flips": "flips from right to wrong under the perturbation",
}
SORTS = {"score": "score, high first", "wrong": "most wrong first", "name": "name"}
UNCERTAIN_BAND = 0.1
EPOCH_FILE = re.compile(r"^epoch-(\d+)\.csv$")


class PredictionsError(Exception):
    """A predictions file that cannot be shown; the message names the file and what is wrong."""


def prediction_files(run_dir: Path) -> dict[int, Path]:
    """Epoch -> predictions file of a run, oldest first."""
    folder = Path(run_dir) / "predictions"
    found = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = EPOCH_FILE.match(path.name)
            if match:
                found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def load_predictions(path: Path) -> pd.DataFrame:
    """img_name, target, score of a predictions CSV (the engine's, or an evaluation's)."""
    try:
        frame = pd.read_csv(path, dtype={"img_name": str}, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise PredictionsError(f"{path}: cannot read it ({exc})") from None
    missing = {"img_name", "target", "score"} - set(frame.columns)
    if missing:
        raise PredictionsError(f"{path}: not a predictions file (no {', '.join(sorted(missing))} column)")
    keep = ["img_name", "target", "score"] + (["clean_score"] if "clean_score" in frame.columns else [])
    slices = [c for c in frame.columns if c not in (*keep, "pred", "correct")]  # source, label-file columns: as text
    frame = frame[keep + slices].copy()
    for column in slices:
        frame[column] = frame[column].astype(str)
    frame["target"] = pd.to_numeric(frame["target"], errors="coerce").fillna(-1).astype(np.int64)
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce").astype(np.float64)
    if "clean_score" in frame.columns:  # a matrix row under a perturbation: its score on the clean image
        frame["clean_score"] = pd.to_numeric(frame["clean_score"], errors="coerce").astype(np.float64)
    return frame.reset_index(drop=True)


@dataclass(frozen=True)
class Confusion:
    tn: int
    fp: int
    fn: int
    tp: int

    @property
    def total(self) -> int:
        return self.tn + self.fp + self.fn + self.tp

    @property
    def accuracy(self) -> float | None:
        return (self.tp + self.tn) / self.total if self.total else None

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall or 0.0
        return 2 * p * r / (p + r) if p + r else 0.0


class PredictionTable:
    """One validation's predictions and the questions the screen asks of them."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.names = frame["img_name"].to_numpy(dtype=object)
        self.target = frame["target"].to_numpy()
        self.score = frame["score"].to_numpy()
        self.labelled = self.target >= 0
        self.clean_score = frame["clean_score"].to_numpy() if "clean_score" in frame.columns else None
        self._lower_names: np.ndarray | None = None

    def masks(self, threshold: float) -> dict[str, np.ndarray]:
        called_fake = self.score > threshold
        fake, real = self.target == 1, self.target == 0
        return {
            "all": np.ones(len(self.score), dtype=bool),
            "misclassified": self.labelled & (called_fake != fake),
            "fp": real & called_fake,
            "fn": fake & ~called_fake,
            "uncertain": np.abs(self.score - threshold) < UNCERTAIN_BAND,
            "flips": self._flips(threshold, called_fake, fake),
        }

    def _flips(self, threshold: float, called_fake: np.ndarray, fake: np.ndarray) -> np.ndarray:
        """Right on the clean image, wrong under the perturbation (none without a clean score)."""
        if self.clean_score is None:
            return np.zeros(len(self.score), dtype=bool)
        right_before = (self.clean_score > threshold) == fake
        return self.labelled & right_before & (called_fake != fake)

    def counts(self, threshold: float) -> dict[str, int]:
        return {name: int(mask.sum()) for name, mask in self.masks(threshold).items()}

    def confusion(self, threshold: float) -> Confusion:
        called_fake = self.score > threshold
        fake, real = self.target == 1, self.target == 0
        return Confusion(int((real & ~called_fake).sum()), int((real & called_fake).sum()),
                         int((fake & ~called_fake).sum()), int((fake & called_fake).sum()))

    def view(self, threshold: float, filter_name: str = "all", sort: str = "score", search: str = "") -> pd.DataFrame:
        """The rows to show: filtered, searched (case-insensitive substring of the name), sorted."""
        mask = self.masks(threshold)[filter_name]
        if search:
            if self._lower_names is None:
                self._lower_names = np.char.lower(self.names.astype(str))
            mask = mask & (np.char.find(self._lower_names, search.lower()) >= 0)
        rows = np.flatnonzero(mask)
        if sort == "score":
            rows = rows[np.argsort(-self.score[rows], kind="stable")]
        elif sort == "wrong":
            wrongness = np.where(self.labelled[rows], np.abs(self.score[rows] - self.target[rows]), 0.0)
            rows = rows[np.argsort(-wrongness, kind="stable")]
        else:
            rows = rows[np.argsort(self.names[rows].astype(str), kind="stable")]
        view = self.frame.iloc[rows].copy()
        view["pred"] = (view["score"] > threshold).astype(np.int64)
        view["correct"] = np.where(view["target"] >= 0, view["pred"] == view["target"], False)
        return view


def eer_threshold(scores: np.ndarray, targets: np.ndarray) -> float | None:
    """The score threshold where the false-positive and false-negative rates meet (None for one class)."""
    labelled = targets >= 0
    scores, targets = scores[labelled], targets[labelled]
    positives, negatives = int((targets == 1).sum()), int((targets == 0).sum())
    if not positives or not negatives:
        return None
    thresholds = np.unique(scores)
    order = np.argsort(scores)
    sorted_scores, sorted_targets = scores[order], targets[order]
    # at threshold t (fake when score > t): FNR = fakes with score <= t / positives, FPR = reals above t / negatives
    fakes_at_or_below = np.cumsum(sorted_targets == 1)
    reals_at_or_below = np.cumsum(sorted_targets == 0)
    last = np.searchsorted(sorted_scores, thresholds, side="right") - 1
    fnr = fakes_at_or_below[last] / positives
    fpr = 1.0 - reals_at_or_below[last] / negatives
    best = int(np.argmin(np.abs(fnr - fpr)))
    return float(thresholds[best])


class ScoreHistory:
    """Every epoch's score of one image of a run (for the sparkline), from the run's prediction files."""

    def __init__(self, run_dir: Path):
        self.files = prediction_files(run_dir)
        self._scores: dict[int, pd.Series] = {}

    def load(self) -> None:
        """Read every epoch's file once (the screen does this in a worker)."""
        for epoch, path in self.files.items():
            if epoch not in self._scores:
                try:
                    frame = load_predictions(path)
                except PredictionsError:
                    continue
                self._scores[epoch] = pd.Series(frame["score"].to_numpy(), index=frame["img_name"].to_numpy())

    def of(self, name: str) -> list[tuple[int, float]]:
        out = []
        for epoch, series in self._scores.items():
            value = series.get(name)
            if value is not None and not isinstance(value, pd.Series):
                out.append((epoch, float(value)))
        return out
