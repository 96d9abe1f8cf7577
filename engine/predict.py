"""Using a checkpoint: evaluate it on a labelled split, or write a competition submission.

A submission has the header ``img_name,y_pred``, one row per image in the order of
the split's label/list file (sorted names without one), ``y_pred`` the probability
of fake in [0, 1]. It is checked after writing (rows, order, range) and only then
renamed into place and announced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import timm
import torch

from engine.checkpoint_store import resolve_checkpoint
from engine.contract.config import IMG_SIZE_RANGE, Config
from engine.contract.errors import CheckpointError, FfdvError, ModelError
from engine.contract.protocol import clean_number
from engine.contract.runstore import atomic_path, atomic_write_json
from engine.contract.sidecar import Sidecar, SidecarError, read_sidecar, sidecar_path
from engine.data.dataset import Split
from engine.device import DeviceSetup, setup_device
from engine.inference import Scores, predictions_frame, score_batches
from engine.loader import DeviceNormalizer, EpochSampler, ImageDataset, ImageSpec, eval_transform, make_loader
from engine.metrics import detection_metrics
from engine.models import build_network, check_model_name, read_state_dict
from engine.source_metrics import mean_over_sources, metrics_by_source
from engine.stems import STEM_KEY, backbone_of, stem_of_state

UNDECODABLE_SCORE = 0.5  # an image that cannot be read still needs a row; 0.5 claims nothing


@dataclass
class LoadedCheckpoint:
    model: torch.nn.Module
    spec: ImageSpec
    sidecar: Sidecar
    path: Path


def load_checkpoint(path: Path | str, setup: DeviceSetup, model_name: str | None = None,
                    img_size: int | None = None) -> LoadedCheckpoint:
    """Build the sidecar's model and load the weights strictly; ``model_name`` stands in for a lost sidecar."""
    weights_path = resolve_checkpoint(path)
    lo, hi = IMG_SIZE_RANGE
    if img_size is not None and not lo <= img_size <= hi:
        raise CheckpointError(f"--img-size {img_size}: the input size must be from {lo} to {hi} pixels "
                              "(the rule of data.img_size). Fix: pass the size the model was trained at.")
    lost = False
    try:
        sidecar = read_sidecar(weights_path)
    except SidecarError:
        if not model_name:
            raise
        sidecar, lost = Sidecar(model=model_name, img_size=img_size or 224), True
    name = model_name or sidecar.model
    check_model_name(name)
    try:  # ffdv's safetensors, or weights trained elsewhere (a state dict read with weights_only=True)
        state = read_state_dict(weights_path)
    except ModelError as exc:
        raise CheckpointError(str(exc)) from None
    stem = check_stem(weights_path, sidecar, state, from_sidecar=not lost)
    model = build_network(name, stem, pretrained=False)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise CheckpointError(
            f"{weights_path}: the weights do not fit model {name!r} ({' '.join(first)[:300]}). "
            "Fix: check the sidecar's model name, or pass --model with the right one."
        ) from None
    data_cfg = timm.data.resolve_model_data_config(backbone_of(model))
    spec = ImageSpec(
        img_size=int(img_size or sidecar.img_size or data_cfg["input_size"][-1]),
        mean=tuple(sidecar.mean or data_cfg["mean"]),
        std=tuple(sidecar.std or data_cfg["std"]),
        eval_crop=sidecar.eval_crop,
        crop=sidecar.crop,
        eval_grid=sidecar.eval_grid if sidecar.crop == "native" else 1,
        eval_reduce=sidecar.eval_reduce,
    )
    model.to(setup.device)
    if setup.channels_last:
        model.to(memory_format=torch.channels_last)
    return LoadedCheckpoint(model, spec, sidecar, weights_path)


def check_stem(weights_path: Path, sidecar: Sidecar, state: dict[str, torch.Tensor], from_sidecar: bool) -> str:
    """The stem to build: the sidecar's, which must be the one the weights were saved with. Without a sidecar
    (lost, or weights from elsewhere) the weights tell."""
    found = stem_of_state(state)
    if not from_sidecar:
        return found
    if sidecar.stem != found:
        has = f"the SRM residual stem ({STEM_KEY}) of a {found!r} model" if found != "rgb" else "no SRM stem (plain timm keys)"
        raise CheckpointError(
            f"{weights_path}: its sidecar says model.stem = {sidecar.stem!r}, but the weights have {has}. "
            f"Fix: set \"stem\": \"{found}\" in {sidecar_path(weights_path).name}, or pair the weights with their own sidecar."
        )
    return found


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


def inference_setup(device: str, amp: str = "auto") -> DeviceSetup:
    config = Config()
    config.train.device = device
    config.train.amp = amp
    return setup_device(config)


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
    with atomic_path(predictions) as tmp:
        predictions_frame(split, scores).to_csv(tmp, index=False)
    report = {**report, "predictions": str(predictions)}
    try:
        atomic_write_json(out, report)
    except BaseException:
        predictions.unlink(missing_ok=True)
        raise
    return predictions


def submission_frame(split: Split, scores: Scores) -> pd.DataFrame:
    """Every image of the split in its order; unreadable ones get 0.5 (reported by the caller)."""
    y_pred = np.full(len(split), UNDECODABLE_SCORE, dtype=np.float64)
    y_pred[scores.index] = scores.score
    return pd.DataFrame({"img_name": split.names, "y_pred": np.round(y_pred, 6)})


def check_submission(path: Path, split: Split) -> None:
    """Read the file back: header, one row per image in order, values in [0, 1]."""
    frame = pd.read_csv(path, dtype={"img_name": str}, keep_default_na=False)
    problems = []
    if list(frame.columns) != ["img_name", "y_pred"]:
        problems.append(f"header is {','.join(frame.columns)!r}, not 'img_name,y_pred'")
    elif frame["img_name"].tolist() != list(split.names):
        problems.append("the rows are not the split's images in its order")
    elif not pd.to_numeric(frame["y_pred"], errors="coerce").between(0.0, 1.0).all():  # NaN and text are not between
        problems.append("y_pred has values outside [0, 1]")
    if problems:
        raise FfdvError(f"{path}: the submission failed its check: {'; '.join(problems)}")


def write_submission(out: Path, split: Split, scores: Scores) -> Path:
    out = Path(out)
    with atomic_path(out) as tmp:
        submission_frame(split, scores).to_csv(tmp, index=False, float_format="%.6f")
        check_submission(tmp, split)
    return out


def write_decisions(submission: Path, split: Split, scores: Scores, threshold: float) -> Path:
    """``<submission>.decisions.csv`` beside it: img_name,y_pred,decision (1 = fake: y_pred above the threshold)."""
    frame = submission_frame(split, scores)
    y_pred = np.full(len(split), UNDECODABLE_SCORE, dtype=np.float64)
    y_pred[scores.index] = scores.score  # unrounded: a score equal to the threshold stays on its side
    frame["decision"] = (y_pred > threshold).astype(np.int64)
    out = Path(submission).with_suffix(".decisions.csv")
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6f")
    return out
