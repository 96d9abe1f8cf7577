"""Checkpoints: safetensors weights, a JSON sidecar, and the training state to resume from.

``checkpoints/epoch-NNN.safetensors`` holds plain timm weights (load them with
``timm.create_model(name, num_classes=2)`` and ``load_state_dict``; behind an SRM stem,
``engine.models.build_network(name, stem)``); the sidecar
``epoch-NNN.json`` says which model, input size, normalisation, epoch, metrics and
config they belong to. ``best.*`` and ``last.*`` are relative links to the current
best and newest ones (copies where links are not possible). The training state
(optimiser, scheduler, scaler, EMA, RNG, position) lives in ``epoch-NNN.state.pt``
beside the newest checkpoint only: it is as large as the optimiser and only the
newest one is resumed from. Every file is written under a temporary name and
renamed, so a kill mid-write leaves the previous checkpoint intact; the index is
written after the new files and before anything old is deleted, and a start after
a kill removes leftover temporaries and rebuilds an index that disagrees with the
files on disk (the tests kill the engine in each of these windows).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from engine.contract.errors import CheckpointError
from engine.contract.runstore import atomic_path, remove_leftover_temporaries
from engine.contract.sidecar import Sidecar, SidecarError, encode_sidecar, read_sidecar

FORMAT = 1
INDEX = "index.json"


@dataclass
class Record:
    name: str  # file stem, e.g. "epoch-003"
    epoch: int  # epochs completed when saved
    step: int
    metric_value: float | None
    reason: str  # "epoch", "command", "stop" or "recovery" (mid-epoch, every train.recovery_every_min)
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
        sidecar: Sidecar,
        state: dict[str, Any] | None,
        metric_value: float | None,
        reason: str,
    ) -> tuple[Path, bool]:
        """Write one checkpoint; returns its weights path and whether it is the new best.

        The crash-safe order: the new files (each under a temporary name, then renamed), the
        best/last links, the index, and only then the pruning of what the index no longer lists.
        A kill anywhere leaves either the old index with its files intact, or the new one with
        its files; ``recover`` tidies up either way at the next start.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch:03d}" if reason == "epoch" else f"epoch-{epoch:03d}-step-{step:08d}"
        weights_path = self.folder / f"{name}.safetensors"
        with atomic_path(weights_path) as tmp:
            save_file(tensors_for_file(weights), str(tmp), metadata={"format": "pt", "model": sidecar.model})
            kill_point(reason, "weights.tmp")
        kill_point(reason, "weights")
        previous_best = self.best()
        record = Record(name, epoch, step, metric_value, reason, time.time())
        self.records = [r for r in self.records if r.name != name] + [record]
        is_best = metric_value is not None and self.best() is record
        sidecar = replace(sidecar, epoch=epoch, step=step, reason=reason, best_metric=self.best_metric,
                          metric_value=metric_value, is_best=is_best, created=record.time)
        _write_json(self.folder / f"{name}.json", encode_sidecar(sidecar), reason, "sidecar")
        if state is not None:
            with atomic_path(self.folder / f"{name}.state.pt") as tmp:
                torch.save(state, tmp)
                kill_point(reason, "state.tmp")
            kill_point(reason, "state")
        self._point("last", name)
        if is_best:
            self._point("best", name)
        elif previous_best is None and self.best() is None and reason != "recovery":
            self._point("best", name)  # no metric yet: best is the newest epoch checkpoint (never a recovery one)
        kill_point(reason, "links")
        dropped = self._drop_records()
        self._write_index(reason)
        self._delete_files(dropped, keep_state=name if state is not None else None)
        kill_point(reason, "prune")
        return weights_path, is_best

    def _write_index(self, reason: str = "") -> None:
        _write_json(self.folder / INDEX, {"format": FORMAT, "best_metric": self.best_metric,
                                          "checkpoints": [asdict(r) for r in self.records]}, reason, "index")

    def recover(self) -> list[str]:
        """At the start of a run (its writer only): remove temporary files a kill left, rebuild an index that
        disagrees with the checkpoints on disk, and point best/last again. Returns what it did, for warnings."""
        notes = []
        removed = remove_leftover_temporaries(self.folder)
        if removed:
            notes.append(f"removed {len(removed)} unfinished file(s) a kill left in {self.folder}: "
                         f"{', '.join(p.name for p in removed[:5])}")
        on_disk = records_on_disk(self.folder)
        try:
            listed = read_index(self.folder)
        except CheckpointError:
            listed = None
        if listed is None or {r.name for r in listed} != {r.name for r in on_disk}:
            self.records = on_disk
            if on_disk or listed:
                self._write_index()
                notes.append(f"rebuilt {self.folder / INDEX} from the {len(on_disk)} checkpoint(s) on disk "
                             "(a kill came between writing a checkpoint and its index)")
        if self.records:
            newest = max(self.records, key=_age)
            if self._target("last") != newest.name:
                self._point("last", newest.name)
            best = self.best() or self._newest_unscored()
            if best is None:
                self._unpoint("best")
            elif self._target("best") != best.name:
                self._point("best", best.name)
        return notes

    def _newest_unscored(self) -> Record | None:
        """Before the first validation: the newest checkpoint written at an epoch's end or on command; a recovery
        checkpoint from mid-epoch is for resuming, never a "best" to judge or ship."""
        candidates = [r for r in self.records if r.reason != "recovery"]
        return max(candidates, key=_age) if candidates else None

    def _unpoint(self, alias: str) -> None:
        for suffix in (".safetensors", ".json"):
            link = self.folder / f"{alias}{suffix}"
            if link.is_symlink():
                link.unlink()

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

    def _drop_records(self) -> list[Record]:
        """Forget what is neither in the top k, nor best, nor last, nor the newest; returns the forgotten."""
        scored = sorted((r for r in self.records if r.metric_value is not None), key=self._rank, reverse=True)
        keep = {r.name for r in scored[: self.keep_top_k]}
        keep |= {n for n in (self._target("best"), self._target("last")) if n}
        keep.add(max(self.records, key=_age).name)
        dropped = [r for r in self.records if r.name not in keep]
        self.records = [r for r in self.records if r.name in keep]
        return dropped

    def _delete_files(self, dropped: list[Record], keep_state: str | None) -> None:
        for record in dropped:
            for suffix in (".safetensors", ".json", ".state.pt"):
                (self.folder / f"{record.name}{suffix}").unlink(missing_ok=True)
        if keep_state is not None:
            for state_file in self.folder.glob("*.state.pt"):
                if state_file.name != f"{keep_state}.state.pt":
                    state_file.unlink(missing_ok=True)


def _age(record: Record) -> tuple[int, int, float]:
    return record.epoch, record.step, record.time


def _write_json(path: Path, data: Any, reason: str, phase: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8")
        kill_point(reason, f"{phase}.tmp")
    kill_point(reason, phase)


# ---------------------------------------------------------------- fault injection (tests only)

KILL_ENV = "FFDV_TEST_KILL_AT"
_reached: dict[str, int] = {}


def kill_point(reason: str, phase: str) -> None:
    """``FFDV_TEST_KILL_AT=epoch.index:2`` SIGKILLs this process the 2nd time it reaches that phase of writing
    a checkpoint (``REASON.PHASE``, PHASE one of weights[.tmp], sidecar[.tmp], state[.tmp], links, index[.tmp],
    prune): the kill-loop tests crash the engine in every window of a checkpoint write."""
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return
    key = f"{reason}.{phase}"
    _reached[key] = _reached.get(key, 0) + 1
    target, _, nth = spec.partition(":")
    if target == key and _reached[key] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


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
        for candidate in (path / "checkpoints" / "best.safetensors", path / "best.safetensors",
                          path / "model_best.pth.tar"):  # the last: a timm train.py output folder
            if candidate.exists():
                return candidate
        raise CheckpointError(f"{path}: no best.safetensors in this folder (has the run validated yet?)")
    if path.suffix == ".json" and path.with_suffix(".safetensors").exists():
        return path.with_suffix(".safetensors")
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    return path


def load_training_state(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable training state ({type(exc).__name__}: {exc})") from None


def records_on_disk(folder: Path) -> list[Record]:
    """The complete checkpoints in a folder (weights and a readable sidecar), oldest first: the truth the
    index is rebuilt from when a kill left them disagreeing."""
    found = []
    for path in Path(folder).glob("epoch-*.json"):
        if not path.with_suffix(".safetensors").is_file():
            continue
        try:
            sidecar = read_sidecar(path.with_suffix(".safetensors"))
        except SidecarError:
            continue
        if sidecar.epoch is None:
            continue
        found.append(Record(path.stem, sidecar.epoch, sidecar.step or 0, sidecar.metric_value, sidecar.reason or "epoch",
                            sidecar.created or path.stat().st_mtime))
    return sorted(found, key=_age)


def newest_resumable(folder: Path) -> tuple[Path, Record] | None:
    """The newest checkpoint on disk that has its training state beside it (the index may lag after a kill)."""
    for record in sorted(records_on_disk(folder), key=_age, reverse=True):
        state = folder / f"{record.name}.state.pt"
        if state.is_file():
            return state, record
    return None
