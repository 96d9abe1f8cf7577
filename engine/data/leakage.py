"""The leakage audit: which validation (and test) images have a near-copy in training, and what that does to the metrics.

Torch-free, for ``ffdv scan DATA --leakage`` and the app's dataset screen (in a worker). Every split's
images are hashed (engine.data.hashes: pHash of the whole image, of centre crops and of a grid of
off-centre crops, cached per file), then each validation and test image is compared with every training image (and each test image
with every validation image; engine.data.neighbours). A pair closer than ``threshold`` bits of 64
is a near-copy: the same picture rescaled, re-compressed or cropped (anywhere: a crop that keeps 80-95%
of each side matches a grid window of its source within ``crop_threshold``). Images that cannot be hashed are
listed with the reason and left out; they never stop the audit.

Given a run's per-image predictions of the validation split (``img_name,target,score``), the report
also has the metrics on all of it, on the images with a near-copy in training and on those without:
a checkpoint chosen on a leaky validation split is chosen partly for remembering its training images.
The result is kept in the cache folder, so a training run on the same dataset can warn at its start.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engine.contract.errors import DataError
from engine.data.dataset import Dataset, find_dataset
from engine.data.hashes import CENTRE, GRID_SIDES, GRID_STEPS, SplitHashes, cache_dir, folder_key, hash_split
from engine.data.neighbours import crop_threshold_for, near_pairs

DEFAULT_THRESHOLD = 8  # bits of 64: at most this many differ in a near-copy (docs/datasets.md gives the measured distances)
WARN_SHARE = 0.05  # a validation split with more near-copies of training images than this is flagged
CROSSES = (("val", "train"), ("test", "train"), ("test", "val"))  # (query split, base split) compared

ProgressFn = Callable[[str, int, int], None]  # (what, done, total)
StopFn = Callable[[], bool]


@dataclass
class Pair:
    split: str  # the split of the image that has a near-copy elsewhere (val or test)
    name: str
    other_split: str  # where its near-copy is (train or val)
    other_name: str
    distance: int  # Hamming distance of the closest windows, bits of 64


@dataclass
class Unhashable:
    split: str
    name: str
    reason: str


@dataclass
class SubsetMetrics:
    images: int
    real: int
    fake: int
    auc: float | None  # None when one class is missing
    accuracy: float | None  # at threshold 0.5, fake above it


@dataclass
class LeakageReport:
    root: str
    threshold: int
    crop_threshold: int = -1  # bits allowed to an off-centre grid window (-1: threshold + 2)
    windows: list[float] = field(default_factory=lambda: list(CENTRE))  # centre windows (side fractions)
    grid: dict = field(default_factory=lambda: {"sides": list(GRID_SIDES), "steps": GRID_STEPS})  # off-centre windows
    images: dict[str, int] = field(default_factory=dict)  # split -> images listed
    hashed: dict[str, int] = field(default_factory=dict)  # split -> images hashed
    cached: dict[str, int] = field(default_factory=dict)  # split -> hashes taken from the cache
    flagged: dict[str, int] = field(default_factory=dict)  # "val-train" -> query images with a near-copy there
    share: dict[str, float | None] = field(default_factory=dict)  # "val-train" -> flagged / hashed
    pairs: list[Pair] = field(default_factory=list)  # every near pair of every cross, closest first per image
    unhashable: list[Unhashable] = field(default_factory=list)
    metrics: dict[str, SubsetMetrics] = field(default_factory=dict)  # "all" / "with" / "without" near-copy in train
    predictions: str = ""  # the predictions file the metrics come from
    seconds: float = 0.0
    done: bool = False
    cancelled: bool = False

    @property
    def val_share(self) -> float | None:
        return self.share.get("val-train")

    def near_copy_names(self, split: str = "val", other: str = "train") -> set[str]:
        return {p.name for p in self.pairs if p.split == split and p.other_split == other}

    def headline(self) -> str:
        """One sentence for the top of a report."""
        share = self.val_share
        if share is None:
            return "no validation images to compare with training"
        text = (f"{share:.0%} of the validation images ({self.flagged.get('val-train', 0)} of "
                f"{self.hashed.get('val', 0)}) have a near-copy in training (pHash distance <= {self.threshold}, "
                f"crops <= {self.crop_threshold})")
        m = self.metrics
        if "all" in m and "without" in m:
            text += (f"; AUC {_fmt(m['all'].auc)} on all, {_fmt(m['without'].auc)} on the "
                     f"{m['without'].images / max(m['all'].images, 1):.0%} without a near-copy in training")
        return text

    def to_json(self) -> dict:
        data = asdict(self)
        data["pairs"] = len(self.pairs)  # the pairs go into their own CSV
        data["unhashable"] = len(self.unhashable)
        data["headline"] = self.headline()
        return data


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def auc_score(target: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC (the Mann-Whitney statistic with tied scores counted half); None with a class missing."""
    target = np.asarray(target).astype(bool)
    positives, negatives = int(target.sum()), int((~target).sum())
    if positives == 0 or negatives == 0:
        return None
    ranks = pd.Series(np.asarray(score, dtype=np.float64)).rank(method="average").to_numpy()
    return float((ranks[target].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def subset_metrics(target: np.ndarray, score: np.ndarray) -> SubsetMetrics:
    target = np.asarray(target, dtype=np.int64)
    score = np.asarray(score, dtype=np.float64)
    fake = int(target.sum())
    accuracy = float(((score > 0.5).astype(np.int64) == target).mean()) if len(target) else None
    return SubsetMetrics(len(target), len(target) - fake, fake, auc_score(target, score), accuracy)


def read_predictions(path: Path | str) -> tuple[Path, pd.DataFrame]:
    """A predictions CSV (img_name,target,score), or a run folder's newest one."""
    path = Path(path)
    if path.is_dir():
        files = sorted((path / "predictions").glob("epoch-*.csv")) if (path / "predictions").is_dir() else []
        if not files:
            raise DataError(f"{path}: no predictions/epoch-*.csv in this folder. Fix: pass a run folder that has "
                            "validated, or a predictions CSV (ffdv evaluate writes one).")
        path = files[-1]
    try:
        frame = pd.read_csv(path, dtype={"img_name": str}, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the predictions ({exc}). Fix: pass a CSV with img_name,target,score.") from None
    missing = [c for c in ("img_name", "target", "score") if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: no column {', '.join(missing)} (header: {','.join(map(str, frame.columns))}). "
                        "Fix: pass a per-image predictions file (img_name,target,score), as runs and ffdv evaluate write.")
    return path, frame


def split_metrics(frame: pd.DataFrame, near: set[str]) -> dict[str, SubsetMetrics]:
    """Metrics on all predictions, on those whose image has a near-copy (``near``) and on the rest."""
    has = frame["img_name"].isin(near).to_numpy()
    target, score = frame["target"].to_numpy(), frame["score"].to_numpy()
    return {
        "all": subset_metrics(target, score),
        "with": subset_metrics(target[has], score[has]),
        "without": subset_metrics(target[~has], score[~has]),
    }


def audit(
    root: Path | str,
    threshold: int = DEFAULT_THRESHOLD,
    predictions: Path | str | None = None,
    workers: int = 0,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    use_cache: bool = True,
    dataset: Dataset | None = None,
) -> LeakageReport:
    """Audit the dataset at ``root``; raises DataError only for input that is not a dataset or bad predictions."""
    started = time.monotonic()
    if not 0 <= threshold < 64:
        raise DataError(f"threshold {threshold}: must be between 0 and 63 bits. Fix: pass --threshold 8, for example.")
    prediction_frame = None
    report = LeakageReport(str(root), threshold, crop_threshold_for(threshold))
    if predictions is not None:
        path, prediction_frame = read_predictions(predictions)
        report.predictions = str(path)
    if dataset is None:
        dataset = find_dataset(root, check_files=False)
    if "train" not in dataset.splits:
        raise DataError(f"{root}: no training split to compare with. Fix: pass a dataset with trainset/ (or train/).")
    hashes: dict[str, SplitHashes] = {}
    for name, split in dataset.splits.items():
        report.images[name] = len(split)
        what = f"hashing {name}"
        result = hash_split(split.folder, split.names, workers, on_progress=(
            (lambda done, total, what=what: on_progress(what, done, total)) if on_progress else None),
            should_stop=should_stop, use_cache=use_cache)
        if result is None:
            report.cancelled = True
            report.seconds = time.monotonic() - started
            return report
        hashes[name] = result
        report.hashed[name] = int(result.ok.sum())
        report.cached[name] = result.cached
        report.unhashable += [Unhashable(name, split.names[row], reason) for row, reason in sorted(result.errors.items())]
    crosses = [(q, b) for q, b in CROSSES if q in hashes and b in hashes]
    for step, (query, base) in enumerate(crosses):
        if on_progress is not None:
            on_progress(f"comparing {query} with {base}", step, len(crosses))
        qh, bh = hashes[query], hashes[base]
        found = near_pairs(qh.hashes, qh.ok, bh.hashes, bh.ok, threshold, crop_threshold=report.crop_threshold,
                           should_stop=should_stop)
        if found is None:
            report.cancelled = True
            report.seconds = time.monotonic() - started
            return report
        qi, bi, dist = found
        order = np.lexsort((dist, qi))
        report.pairs += [Pair(query, qh.names[i], base, bh.names[j], int(d))
                         for i, j, d in zip(qi[order], bi[order], dist[order])]
        key = f"{query}-{base}"
        report.flagged[key] = int(len(np.unique(qi)))
        report.share[key] = report.flagged[key] / report.hashed[query] if report.hashed[query] else None
    if on_progress is not None:
        on_progress("compared", len(crosses), len(crosses))
    if prediction_frame is not None:
        report.metrics = split_metrics(prediction_frame, report.near_copy_names("val", "train"))
    report.done = True
    report.seconds = time.monotonic() - started
    if use_cache:
        remember(dataset, report)
    return report


def write_report(report: LeakageReport, out: Path | str) -> list[Path]:
    """leakage.json (summary), leakage_pairs.csv (every near pair) and, when any, unhashable.csv into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "leakage.json", out / "leakage_pairs.csv"]
    written[0].write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    with open(written[1], "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["split", "img_name", "other_split", "other_img_name", "distance"])
        writer.writerows([p.split, p.name, p.other_split, p.other_name, p.distance] for p in report.pairs)
    if report.unhashable:
        written.append(out / "unhashable.csv")
        with open(written[-1], "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["split", "img_name", "reason"])
            writer.writerows([u.split, u.name, u.reason] for u in report.unhashable)
    return written


# ---------------------------------------------------------------- the remembered result, for training runs


def _remembered_file(root: Path) -> Path:
    return cache_dir() / "leakage" / f"{folder_key(root)}.json"


def _label_stamp(dataset: Dataset) -> dict[str, list[int]]:
    """Size and mtime of the training and validation label files (or folders): the audit is stale once they change."""
    stamp = {}
    for name, split in sorted(dataset.splits.items()):
        if name not in ("train", "val"):
            continue
        path = split.label_file or split.folder
        try:
            st = os.stat(path)
            stamp[name] = [st.st_size, st.st_mtime_ns]
        except OSError:
            stamp[name] = [-1, -1]
    return stamp


def remember(dataset: Dataset, report: LeakageReport) -> None:
    """Keep the audit's headline for this dataset in the cache folder (best effort)."""
    path = _remembered_file(dataset.root)
    data = {"root": str(Path(dataset.root).resolve()), "threshold": report.threshold, "share": report.share,
            "flagged": report.flagged, "hashed": report.hashed, "headline": report.headline(),
            "stamp": _label_stamp(dataset), "time": time.time()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def remembered(dataset: Dataset) -> dict | None:
    """The last audit of this dataset, if its label files have not changed since."""
    try:
        data = json.loads(_remembered_file(dataset.root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("stamp") != _label_stamp(dataset):
        return None
    return data


def leakage_warning(dataset: Dataset, warn_share: float = WARN_SHARE) -> str | None:
    """The sentence a training run starts with when the last audit flagged its validation split, else None."""
    data = remembered(dataset)
    if data is None:
        return None
    share = (data.get("share") or {}).get("val-train")
    if not isinstance(share, (int, float)) or share <= warn_share:
        return None
    return (f"validation split leaks: {share:.0%} of its images have a near-copy in training (leakage audit, "
            f"pHash distance <= {data.get('threshold')}); its AUC overstates how well the model generalises and "
            "picks the checkpoint by it. Fix: ffdv split DATA --by hash-group writes a leakage-free split.")
