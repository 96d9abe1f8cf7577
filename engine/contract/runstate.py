"""What a viewer knows about a run, folded from its events: status, progress, curves, metrics.

Torch-free (the app uses it). ``RunState.apply`` takes the plain dicts of
``EventReader.poll_dicts`` so a long run replays fast; the same fold serves a replay
from the start and a live follow. The training-loss curve is kept at a bounded
resolution (adjacent points are merged pairwise when it grows past its limit), so a
100-epoch run costs the same to hold and draw as a short one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.contract.protocol import PROTOCOL_VERSION
from engine.contract.runstore import EventReader, RunPaths
from engine.contract.status import LIVE_STATUSES, RunStatus

CURVE_POINTS = 2000
MAX_MESSAGES = 200

__all__ = ["LIVE_STATUSES", "Curve", "RunFollower", "RunState", "RunStatus", "load_run"]


@dataclass
class Curve:
    """(step, value) points at a bounded resolution: each point is the mean of ``bucket`` raw points."""

    limit: int = CURVE_POINTS
    steps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    bucket: int = 1
    _sum_step: float = 0.0
    _sum_value: float = 0.0
    _count: int = 0

    def add(self, step: float, value: float) -> None:
        self._sum_step += step
        self._sum_value += value
        self._count += 1
        if self._count < self.bucket:
            return
        self.steps.append(self._sum_step / self._count)
        self.values.append(self._sum_value / self._count)
        self._sum_step = self._sum_value = 0.0
        self._count = 0
        if len(self.steps) >= 2 * self.limit:
            self.steps = [(a + b) / 2 for a, b in zip(self.steps[::2], self.steps[1::2])]
            self.values = [(a + b) / 2 for a, b in zip(self.values[::2], self.values[1::2])]
            self.bucket *= 2

    def extend(self, steps: list[Any], values: list[Any]) -> None:
        """Add many points; ones that are not numbers (a damaged line) are left out."""
        add = self.add
        for step, value in zip(steps, values):
            if type(value) in (float, int) and type(step) in (float, int):
                add(step, value)

    def points(self) -> tuple[list[float], list[float]]:
        """All points, the partly filled last bucket included."""
        if not self._count:
            return list(self.steps), list(self.values)
        return self.steps + [self._sum_step / self._count], self.values + [self._sum_value / self._count]


@dataclass
class RunState:
    run_id: str = ""
    status: RunStatus = RunStatus.STARTING
    config: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    device: str = ""
    world_size: int = 1
    epochs: int = 0
    steps_per_epoch: int = 0
    num_train: int = 0
    num_val: int = 0
    epoch: int = 0  # the epoch in progress (0-based); equals ``epochs`` when all are done
    epoch_step: int = 0
    step: int = 0
    lr: float | None = None
    images_per_sec: float | None = None
    loss: Curve = field(default_factory=Curve)
    epoch_losses: dict[int, float] = field(default_factory=dict)  # epoch (1-based) -> mean train loss
    validations: dict[int, dict[str, Any]] = field(default_factory=dict)  # epoch -> {"epoch", "metrics", ...}
    best_metric: str = "auc"
    best_epoch: int | None = None
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    predictions: dict[int, str] = field(default_factory=dict)  # epoch -> path inside the run folder
    warnings: list[str] = field(default_factory=list)
    leaky_validation: str = ""  # the run's "leaky_validation" warning: the last leakage audit flagged its validation split
    errors: list[dict[str, Any]] = field(default_factory=list)
    heartbeat: dict[str, Any] | None = None
    started_at: float | None = None
    finished: dict[str, Any] | None = None
    last_time: float | None = None
    last_seq: int = 0
    newer_protocol: int | None = None  # a log written by a newer engine: shown, read as far as understood
    bad_images: int = 0

    # ------------------------------------------------------------ folding

    def apply(self, events: list[dict[str, Any]]) -> None:
        """Fold events in order. Step events, nearly all of a long log, are folded in bulk."""
        if not events:
            return
        pending = None  # the newest step not yet taken: progress fields need only the last one
        for event in events:
            kind = event.get("kind")
            if kind == "step":
                pending = event
                continue
            if pending is not None and kind in _MOVES_PROGRESS:
                self._take_step(pending)
                pending = None
            handler = _HANDLERS.get(kind)
            if handler is not None:
                try:
                    handler(self, event)
                except (KeyError, TypeError, ValueError):
                    self.warnings.append(f"event {event.get('seq')} ({kind}) could not be read")
        if pending is not None:
            self._take_step(pending)
        steps = [e for e in events if e.get("kind") == "step"]
        if steps:
            self.loss.extend([e.get("step") for e in steps], [e.get("loss") for e in steps])
        last = events[-1]
        seq, t, version = last.get("seq"), last.get("time"), last.get("v")
        if isinstance(seq, int):
            self.last_seq = max(self.last_seq, seq)
        if isinstance(t, (int, float)):
            self.last_time = t
        if isinstance(version, int) and version > PROTOCOL_VERSION:
            self.newer_protocol = version

    def _run_started(self, e: dict[str, Any]) -> None:
        self.run_id = e.get("run_id", self.run_id)
        self.status = RunStatus.RUNNING
        self.finished = None
        self.config = e.get("config") or {}
        self.model = e.get("model", "")
        self.device = e.get("device", "")
        self.world_size = int(e.get("world_size", 1))
        self.epochs = int(e.get("epochs", 0))
        self.steps_per_epoch = int(e.get("steps_per_epoch", 0))
        self.num_train = int(e.get("num_train", 0))
        self.num_val = int(e.get("num_val", 0))
        self.epoch = int(e.get("start_epoch", 0))
        self.best_metric = self.config.get("train", {}).get("best_metric", "auc")
        if self.started_at is None:
            self.started_at = e.get("time")

    def _take_step(self, e: dict[str, Any]) -> None:
        try:
            self.epoch = int(e["epoch"])
            self.epoch_step = int(e["epoch_step"])
            self.step = int(e["step"])
            self.steps_per_epoch = int(e.get("steps_per_epoch", self.steps_per_epoch))
        except (KeyError, TypeError, ValueError):
            self.warnings.append(f"event {e.get('seq')} (step) could not be read")
            return
        self.lr = e.get("lr")
        self.images_per_sec = e.get("images_per_sec")

    def _epoch_ended(self, e: dict[str, Any]) -> None:
        self.epoch_losses[int(e["epoch"]) + 1] = e.get("train_loss")
        self.epoch = int(e["epoch"]) + 1
        self.epoch_step = 0

    def _validated(self, e: dict[str, Any]) -> None:
        epoch = int(e["epoch"])
        self.validations.pop(epoch, None)  # a resumed run validates an epoch again: the newer one counts
        self.validations[epoch] = {"epoch": epoch, "metrics": e.get("metrics") or {}, "num_images": e.get("num_images"),
                                   "weights": e.get("weights", "model")}
        if e.get("is_best"):
            self.best_epoch = epoch

    def _predictions_written(self, e: dict[str, Any]) -> None:
        self.predictions[int(e["epoch"])] = e["path"]

    def _checkpoint_saved(self, e: dict[str, Any]) -> None:
        self.checkpoints.append({k: e.get(k) for k in ("epoch", "step", "path", "reason", "is_best", "metric_value")})

    def _paused(self, e: dict[str, Any]) -> None:
        self.status = RunStatus.PAUSED

    def _resumed(self, e: dict[str, Any]) -> None:
        self.status = RunStatus.RUNNING

    def _warning(self, e: dict[str, Any]) -> None:
        self.warnings = (self.warnings + [str(e.get("message", ""))])[-MAX_MESSAGES:]
        if e.get("code") == "leaky_validation":
            self.leaky_validation = str(e.get("message", ""))

    def _error(self, e: dict[str, Any]) -> None:
        self.errors = (self.errors + [{"message": e.get("message", ""), "traceback": e.get("traceback", ""),
                                        "rank": e.get("rank", 0)}])[-MAX_MESSAGES:]

    def _heartbeat(self, e: dict[str, Any]) -> None:
        self.heartbeat = e

    def _run_finished(self, e: dict[str, Any]) -> None:
        self.finished = e
        self.status = RunStatus.of_outcome(e.get("status"))
        self.bad_images = int(e.get("bad_images") or 0)
        if e.get("epochs_completed") is not None:
            self.epoch = int(e["epochs_completed"])

    # ------------------------------------------------------------ derived

    @property
    def best(self) -> dict[str, Any] | None:
        return self.validations.get(self.best_epoch) if self.best_epoch is not None else None

    @property
    def best_value(self) -> float | None:
        best = self.best
        return best["metrics"].get(self.best_metric) if best else None

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished.get("time") if self.finished else (self.last_time or time.time())
        return max(0.0, (end or time.time()) - self.started_at)

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES


_MOVES_PROGRESS = frozenset({"run_started", "epoch_ended", "run_finished"})
_HANDLERS = {
    "run_started": RunState._run_started,
    "epoch_ended": RunState._epoch_ended,
    "validated": RunState._validated,
    "predictions_written": RunState._predictions_written,
    "checkpoint_saved": RunState._checkpoint_saved,
    "paused": RunState._paused,
    "resumed": RunState._resumed,
    "warning": RunState._warning,
    "error": RunState._error,
    "heartbeat": RunState._heartbeat,
    "run_finished": RunState._run_finished,
}


class RunFollower:
    """A RunState kept up to date from a run folder: ``poll()`` reads what was appended since the last call."""

    def __init__(self, run_dir: Path | str):
        self.paths = RunPaths(Path(run_dir))
        self.state = RunState(run_id=self.paths.root.name)
        self.reader = EventReader(self.paths.events)

    def poll(self) -> list[dict[str, Any]]:
        events = self.reader.poll_dicts()
        if events:
            self.state.apply(events)
        return events


def load_run(run_dir: Path | str) -> RunState:
    """The state of a run from its whole log (a replay)."""
    follower = RunFollower(run_dir)
    follower.poll()
    return follower.state
