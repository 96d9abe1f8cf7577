"""Every checkpoint of every run, with what its sidecar says.

Torch-free: sidecars are JSON (the engine jobs that use a checkpoint: engine.contract.jobs).
A checkpoint whose sidecar is missing, unreadable or
names a model timm does not have is listed with that problem, never hidden.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine.contract.sidecar import SidecarError, read_sidecar, sidecar_path

ALIASES = ("best", "last")


@dataclass
class CheckpointEntry:
    run: str
    path: Path  # the .safetensors file
    epoch: int | None = None
    step: int | None = None
    reason: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    best_metric: str = "auc"
    is_best: bool = False
    size: int = 0
    mtime: float = 0.0
    model: str | None = None
    img_size: int | None = None
    stem: str = "rgb"  # the fixed filter in front of the backbone; a fine-tuned run keeps it
    data_root: str | None = None
    resumable: bool = False
    problem: str | None = None
    calibration: dict[str, Any] | None = None  # ffdv calibrate's temperature and operating points

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def key(self) -> str:
        return f"{self.run}/{self.name}"


def _best_target(folder: Path) -> str | None:
    link = folder / "best.safetensors"
    try:
        return Path(os.readlink(link)).stem if link.is_symlink() else None
    except OSError:
        return None


def read_entry(run: str, weights: Path, best: str | None, model_names: set[str] | None) -> CheckpointEntry:
    stat = weights.stat()
    entry = CheckpointEntry(run, weights, size=stat.st_size, mtime=stat.st_mtime, is_best=weights.stem == best,
                            resumable=weights.with_suffix(".state.pt").is_file())
    path = sidecar_path(weights)
    if not path.is_file():
        entry.problem = "sidecar missing: the model name and input size are unknown (evaluate with --model)"
        return entry
    try:
        sidecar = read_sidecar(weights)
    except SidecarError as exc:
        entry.problem = f"damaged sidecar {path.name}: {'; '.join(exc.problems) or exc}"
        return entry
    entry.epoch, entry.step, entry.reason = sidecar.epoch, sidecar.step, sidecar.reason
    entry.metrics = {k: v for k, v in (sidecar.metrics or {}).items()  # numbers only (a confusion matrix is not shown)
                     if isinstance(v, (int, float)) and not isinstance(v, bool)}
    entry.best_metric = sidecar.best_metric
    entry.model, entry.img_size, entry.data_root = sidecar.model, sidecar.img_size, sidecar.data_root()
    entry.stem, entry.calibration = sidecar.stem, sidecar.calibration
    if model_names is not None and entry.model not in model_names:
        entry.problem = f"model {entry.model!r} is not a timm model in this installation"
    return entry


def list_checkpoints(runs_dir: Path, model_names: set[str] | None = None) -> list[CheckpointEntry]:
    """All checkpoints under the runs folder: newest run first, then by epoch and step."""
    entries = []
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return entries
    for run in sorted(runs_dir.iterdir()):
        folder = run / "checkpoints"
        if not folder.is_dir():
            continue
        best = _best_target(folder)
        for weights in sorted(folder.glob("*.safetensors")):
            if weights.stem in ALIASES or weights.name.startswith("."):
                continue
            try:
                entries.append(read_entry(run.name, weights, best, model_names))
            except OSError:
                continue  # deleted while we looked (a run pruning its top-k)
    entries.sort(key=lambda e: (-e.mtime if e.epoch is None else 0, e.run, e.epoch or 0, e.step or 0))
    return entries


def catalog_frame(entries: list[CheckpointEntry]) -> pd.DataFrame:
    rows = []
    for i, e in enumerate(entries):
        m = e.metrics
        rows.append({"i": i, "run": e.run, "checkpoint": e.name, "epoch": e.epoch, "auc": m.get("auc"), "ap": m.get("ap"),
                     "accuracy": m.get("accuracy"), "f1": m.get("f1"), "eer": m.get("eer"),
                     "tpr": m.get("tpr_at_fpr_1e-3"), "loss": m.get("loss"), "best": e.is_best, "size": e.size,
                     "time": e.mtime, "problem": e.problem or ""})
    return pd.DataFrame(rows, columns=["i", "run", "checkpoint", "epoch", "auc", "ap", "accuracy", "f1", "eer", "tpr",
                                       "loss", "best", "size", "time", "problem"]).set_index("i")
