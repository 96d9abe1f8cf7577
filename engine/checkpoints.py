"""Checkpoints: safetensors weights, a JSON sidecar, and the training state to resume from.

``checkpoints/epoch-NNN.safetensors`` holds plain timm weights (load them with
``timm.create_model(name, num_classes=2)`` and ``load_state_dict``); the sidecar
``epoch-NNN.json`` says which model, input size, normalisation, epoch, metrics and
config they belong to. ``best.*`` and ``last.*`` are relative links to the current
best and newest ones (copies where links are not possible). The training state
(optimiser, scheduler, scaler, EMA, RNG, position) lives in ``epoch-NNN.state.pt``
beside the newest checkpoint only: it is as large as the optimiser and only the
newest one is resumed from. Every file is written under a temporary name and
renamed, so a kill mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from engine.contract.errors import CheckpointError
from engine.contract.runstore import atomic_path, atomic_write_json

FORMAT = 1
INDEX = "index.json"


@dataclass
class Record:
    name: str  # file stem, e.g. "epoch-003"
    epoch: int  # epochs completed when saved
    step: int
    metric_value: float | None
    reason: str  # "epoch", "command" or "stop"
    time: float


def tensors_for_file(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies (safetensors needs both; channels_last weights are neither)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


class CheckpointManager:
    """Writes checkpoints, keeps the top k by the run's metric plus the newest, and the best/last links."""

    def __init__(self, folder: Path, best_metric: str, higher_is_better: bool, keep_top_k: int):
        self.folder = Path(folder)
        self.best_metric = best_metric
        self.higher_is_better = higher_is_better
        self.keep_top_k = keep_top_k
        self.records = read_index(self.folder)

    def _rank(self, record: Record) -> tuple[float, int, int]:
        """Larger is better; on a tie the newer checkpoint wins."""
        value = record.metric_value if self.higher_is_better else -record.metric_value
        return value, record.epoch, record.step

    def best(self) -> Record | None:
        scored = [r for r in self.records if r.metric_value is not None]
        return max(scored, key=self._rank) if scored else None

    def save(
        self,
        *,
        epoch: int,
        step: int,
        weights: dict[str, torch.Tensor],
        sidecar: dict[str, Any],
        state: dict[str, Any] | None,
        metric_value: float | None,
        reason: str,
    ) -> tuple[Path, bool]:
        """Write one checkpoint; returns its weights path and whether it is the new best."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch:03d}" if reason == "epoch" else f"epoch-{epoch:03d}-step-{step:08d}"
        weights_path = self.folder / f"{name}.safetensors"
        with atomic_path(weights_path) as tmp:
            save_file(tensors_for_file(weights), str(tmp), metadata={"format": "pt", "model": str(sidecar.get("model", ""))})
        previous_best = self.best()
        record = Record(name, epoch, step, metric_value, reason, time.time())
        self.records = [r for r in self.records if r.name != name] + [record]
        is_best = metric_value is not None and self.best() is record
        sidecar = {**sidecar, "format": FORMAT, "epoch": epoch, "step": step, "reason": reason,
                   "best_metric": self.best_metric, "metric_value": metric_value, "is_best": is_best,
                   "created": record.time}
        atomic_write_json(self.folder / f"{name}.json", sidecar)
        if state is not None:
            with atomic_path(self.folder / f"{name}.state.pt") as tmp:
                torch.save(state, tmp)
        self._point("last", name)
        if is_best:
            self._point("best", name)
        elif previous_best is None and self.best() is None:
            self._point("best", name)  # no metric yet: best is the newest, so best.* always exists
        self._prune(keep_state=name if state is not None else None)
        atomic_write_json(self.folder / INDEX, {"format": FORMAT, "best_metric": self.best_metric,
                                                "checkpoints": [asdict(r) for r in self.records]})
        return weights_path, is_best

    def _point(self, alias: str, name: str) -> None:
        for suffix in (".safetensors", ".json"):
            link = self.folder / f"{alias}{suffix}"
            tmp = self.folder / f".{alias}{suffix}.tmp-{os.getpid()}"
            try:
                tmp.unlink(missing_ok=True)
                os.symlink(f"{name}{suffix}", tmp)
            except OSError:  # no symlinks here (some network or Windows file systems): copy instead
                shutil.copyfile(self.folder / f"{name}{suffix}", tmp)
            os.replace(tmp, link)

    def _target(self, alias: str) -> str | None:
        link = self.folder / f"{alias}.safetensors"
        return os.readlink(link).removesuffix(".safetensors") if link.is_symlink() else None

    def _prune(self, keep_state: str | None) -> None:
        scored = sorted((r for r in self.records if r.metric_value is not None), key=self._rank, reverse=True)
        keep = {r.name for r in scored[: self.keep_top_k]}
        keep |= {n for n in (self._target("best"), self._target("last")) if n}
        newest = max(self.records, key=lambda r: (r.epoch, r.step, r.time))
        keep.add(newest.name)
        for record in list(self.records):
            if record.name not in keep:
                for suffix in (".safetensors", ".json", ".state.pt"):
                    (self.folder / f"{record.name}{suffix}").unlink(missing_ok=True)
                self.records.remove(record)
        if keep_state is not None:
            for state_file in self.folder.glob("*.state.pt"):
                if state_file.name != f"{keep_state}.state.pt":
                    state_file.unlink(missing_ok=True)


# ---------------------------------------------------------------- reading


def read_index(folder: Path) -> list[Record]:
    """The checkpoints a run has written (checkpoints/index.json), oldest first."""
    index = Path(folder) / INDEX
    if not index.is_file():
        return []
    try:
        return [Record(**r) for r in json.loads(index.read_text())["checkpoints"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{index}: unreadable checkpoint index ({exc})") from None


def resolve_checkpoint(path: Path | str) -> Path:
    """A .safetensors file from what a user typed: the file, its sidecar, a checkpoints folder or a run folder."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "checkpoints" / "best.safetensors", path / "best.safetensors"):
            if candidate.exists():
                return candidate
        raise CheckpointError(f"{path}: no best.safetensors in this folder (has the run validated yet?)")
    if path.suffix == ".json" and path.with_suffix(".safetensors").exists():
        return path.with_suffix(".safetensors")
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    return path


def read_sidecar(weights: Path) -> dict[str, Any]:
    sidecar = weights.with_suffix(".json")
    if not sidecar.is_file():
        raise CheckpointError(
            f"{sidecar}: the checkpoint's sidecar is missing, so its model name and input size are unknown. "
            "Fix: pass --model NAME and --img-size N."
        )
    try:
        data = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{sidecar}: unreadable sidecar ({exc})") from None
    if not isinstance(data, dict) or "model" not in data:
        raise CheckpointError(f"{sidecar}: not a ffdv checkpoint sidecar (no 'model' entry)")
    return data


def load_training_state(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable training state ({type(exc).__name__}: {exc})") from None


def newest_resumable(folder: Path) -> tuple[Path, Record] | None:
    """The newest checkpoint that has its training state beside it."""
    for record in sorted(read_index(folder), key=lambda r: (r.epoch, r.step, r.time), reverse=True):
        state = folder / f"{record.name}.state.pt"
        if state.is_file():
            return state, record
    return None
