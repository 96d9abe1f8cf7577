"""Using a loaded checkpoint (engine.checkpoint_loading): score a split, write an evaluation or a submission.

A submission (its rules: engine.contract.submission) is checked after writing (rows,
order, range) and only then renamed into place and announced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.checkpoint_loading import LoadedCheckpoint
from engine.contract.errors import FfdvError
from engine.contract.protocol import clean_number
from engine.contract.runstore import atomic_path, atomic_write_json
from engine.contract.submission import UNDECODABLE_SCORE, check_submission, submission_frame
from engine.data.dataset import Split
from engine.device import DeviceSetup
from engine.inference import Scores, predictions_frame, score_batches
from engine.loader import DeviceNormalizer, EpochSampler, ImageDataset, eval_transform, make_loader
from engine.metrics import detection_metrics
from engine.source_metrics import mean_over_sources, metrics_by_source


def score_split(
    loaded: LoadedCheckpoint,
    split: Split,
    setup: DeviceSetup,
    batch_size: int,
    workers: int,
    on_batch: Callable[[int], None] | None = None,
) -> Scores:
    transform, decode = eval_transform(loaded.spec)
    dataset = ImageDataset(split, transform, decode)
    loader = make_loader(dataset, EpochSampler(len(dataset), False, 0), batch_size, workers, setup.is_cuda,
                         worker_niceness=setup.loader_niceness)
    normalizer = DeviceNormalizer(loaded.spec, setup.device, setup.channels_last)
    scores = score_batches(loaded.model, loader, normalizer, setup, on_batch, reduce=loaded.spec.eval_reduce)
    check_finite_scores(scores, loaded.path)
    return scores


def check_finite_scores(scores: Scores, checkpoint: Path) -> None:
    """NaN or infinite scores make every metric up (an AUC of 0.42 from NaN): refuse them, naming the checkpoint."""
    bad = int((~np.isfinite(np.asarray(scores.score, dtype=np.float64))).sum())
    if bad:
        raise FfdvError(
            f"{checkpoint}: the model's scores are not finite (NaN or infinity) for {bad} of {len(scores.score)} images, "
            "so no metric or submission from them would mean anything. The weights themselves are likely broken "
            "(NaN in the file, or a run that diverged). Fix: use an earlier checkpoint of the run, or retrain with a "
            "lower learning rate (--lr) or gradient clipping (--clip-grad)."
        )


def evaluation_report(loaded: LoadedCheckpoint, split: Split, scores: Scores, seconds: float) -> dict[str, Any]:
    if split.targets is None:
        raise FfdvError(f"{split.folder}: this split has no labels, so it cannot be evaluated. Use `ffdv predict`.")
    metrics = detection_metrics(torch.from_numpy(scores.score), torch.from_numpy(scores.target))
    metrics["loss"] = scores.mean_loss()
    metrics = {k: (clean_number(v) if isinstance(v, float) else v) for k, v in metrics.items()}
    by_source = {}
    if split.sources is not None:
        by_source = metrics_by_source(scores.score, scores.target, np.asarray(split.sources, dtype=object)[scores.index])
    return {
        "by_source": by_source,
        "mean_over_sources": mean_over_sources(by_source) if by_source else {},
        "checkpoint": str(loaded.path),
        "model": loaded.sidecar.model,
        "epoch": loaded.sidecar.epoch,
        "split": str(split.folder),
        "label_file": str(split.label_file) if split.label_file else None,
        "images": len(split),
        "scored": len(scores.index),
        "unreadable": {split.names[i]: reason for i, reason in sorted(scores.bad.items())},
        "metrics": metrics,
        "seconds": round(seconds, 3),
        "time": time.time(),
    }


def default_evaluation_paths(weights: Path, split: Split) -> Path:
    """Inside the run folder when the checkpoint is one of a run's, else the current folder."""
    weights = weights.resolve()  # best.safetensors names the epoch it points to
    stem = f"{weights.stem}-on-{split.folder.name}"
    if weights.parent.name == "checkpoints":
        return weights.parent.parent / "evaluations" / f"{stem}.json"
    return Path(f"{stem}.json")


def check_output_file(out: Path | None, flag: str) -> None:
    """Before any work: an output path must be a file name, not a folder (nor under a file)."""
    if out is None:
        return
    out = Path(out)
    if out.is_dir():
        raise FfdvError(f"{out}: {flag} names a folder, but it must be a file name. Fix: pass a file inside it, "
                        f"e.g. {out / ('result' + (out.suffix or '.json'))}.")
    blocker = next((p for p in out.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise FfdvError(f"{out}: {flag} lies under {blocker}, which is a file, not a folder. Fix: pass a path in a "
                        "folder.")


def write_evaluation(out: Path, report: dict[str, Any], split: Split, scores: Scores) -> Path:
    """The report as JSON, and beside it the per-image predictions (``.csv``): both or neither."""
    predictions = out.with_suffix(".csv")
    if predictions == out:
        raise FfdvError(f"{out}: the metrics and the predictions would be one file. Fix: pass --out NAME.json")
    with atomic_path(predictions) as tmp:
        predictions_frame(split, scores).to_csv(tmp, index=False)
    report = {**report, "predictions": str(predictions)}
    try:
        atomic_write_json(out, report)
    except BaseException:
        predictions.unlink(missing_ok=True)
        raise
    return predictions


def write_submission(out: Path, split: Split, scores: Scores) -> Path:
    out = Path(out)
    with atomic_path(out) as tmp:
        submission_frame(split.names, scores.index, scores.score).to_csv(tmp, index=False, float_format="%.6f")
        check_submission(tmp, split.names)
    return out


def write_decisions(submission: Path, split: Split, scores: Scores, threshold: float) -> Path:
    """``<submission>.decisions.csv`` beside it: img_name,y_pred,decision (1 = fake: y_pred above the threshold)."""
    frame = submission_frame(split.names, scores.index, scores.score)
    y_pred = np.full(len(split), UNDECODABLE_SCORE, dtype=np.float64)
    y_pred[scores.index] = scores.score  # unrounded: a score equal to the threshold stays on its side
    frame["decision"] = (y_pred > threshold).astype(np.int64)
    out = Path(submission).with_suffix(".decisions.csv")
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6f")
    return out
