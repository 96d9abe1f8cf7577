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

from engine.protocol import COMPLETED, FAILED, PROTOCOL_VERSION, STOPPED
from engine.runstore import EventReader, RunPaths

CURVE_POINTS = 2000
MAX_MESSAGES = 200

# Run statuses as viewers show them.
STARTING, RUNNING, PAUSED, FINISHED, CRASHED = "starting", "running", "paused", "finished", "crashed"
FINISHED_STATUS = {COMPLETED: FINISHED, STOPPED: STOPPED, FAILED: FAILED}
LIVE_STATUSES = (STARTING, RUNNING, PAUSED)


@dataclass
class Curve:
    """(step, value) points at a bounded resolution: each point is the mean of ``bucket`` raw points."""

    limit: int = CURVE_POINTS
    steps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    bucket: int = 1
    _pending: list[tuple[float, float]] = field(default_factory=list)

    def add(self, step: float, value: float) -> None:
        self._pending.append((step, value))
        if len(self._pending) < self.bucket:
            return
        self.steps.append(sum(p[0] for p in self._pending) / len(self._pending))
        self.values.append(sum(p[1] for p in self._pending) / len(self._pending))
        self._pending.clear()
        if len(self.steps) >= 2 * self.limit:
            self.steps = [(a + b) / 2 for a, b in zip(self.steps[::2], self.steps[1::2])]
            self.values = [(a + b) / 2 for a, b in zip(self.values[::2], self.values[1::2])]
            self.bucket *= 2

    def points(self) -> tuple[list[float], list[float]]:
        """All points, the not-yet-merged tail included."""
        return self.steps + [p[0] for p in self._pending], self.values + [p[1] for p in self._pending]


@dataclass
class RunState:
    run_id: str = ""
    status: str = STARTING
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
    validations: list[dict[str, Any]] = field(default_factory=list)  # {"epoch", "metrics", "is_best", ...}
    best_metric: str = "auc"
    best_epoch: int | None = None
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    predictions: dict[int, str] = field(default_factory=dict)  # epoch -> path inside the run folder
    warnings: list[str] = field(default_factory=list)
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
        for event in events:
            handler = _HANDLERS.get(event.get("kind"))
            if handler is not None:
                try:
                    handler(self, event)
                except (KeyError, TypeError, ValueError):
                    self.warnings.append(f"event {event.get('seq')} ({event.get('kind')}) could not be read")
            version = event.get("v")
            if isinstance(version, int) and version > PROTOCOL_VERSION:
                self.newer_protocol = version
            seq, t = event.get("seq"), event.get("time")
            if isinstance(seq, int):
                self.last_seq = max(self.last_seq, seq)
            if isinstance(t, (int, float)):
                self.last_time = t

    def _run_started(self, e: dict[str, Any]) -> None:
        self.run_id = e.get("run_id", self.run_id)
        self.status = RUNNING
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

    def _step(self, e: dict[str, Any]) -> None:
        self.epoch = int(e["epoch"])
        self.epoch_step = int(e["epoch_step"])
        self.step = int(e["step"])
        self.steps_per_epoch = int(e.get("steps_per_epoch", self.steps_per_epoch))
        self.lr = e.get("lr")
        self.images_per_sec = e.get("images_per_sec")
        loss = e.get("loss")
        if isinstance(loss, (int, float)):
            self.loss.add(self.step, float(loss))

    def _epoch_ended(self, e: dict[str, Any]) -> None:
        self.epoch_losses[int(e["epoch"]) + 1] = e.get("train_loss")
        self.epoch = int(e["epoch"]) + 1
        self.epoch_step = 0

    def _validated(self, e: dict[str, Any]) -> None:
        entry = {"epoch": int(e["epoch"]), "metrics": e.get("metrics") or {}, "is_best": bool(e.get("is_best")),
                 "num_images": e.get("num_images"), "weights": e.get("weights", "model")}
        self.validations = [v for v in self.validations if v["epoch"] != entry["epoch"]]  # a resumed run repeats
        if entry["is_best"]:
            for v in self.validations:
                v["is_best"] = False
            self.best_epoch = entry["epoch"]
        self.validations.append(entry)

    def _predictions_written(self, e: dict[str, Any]) -> None:
        self.predictions[int(e["epoch"])] = e["path"]

    def _checkpoint_saved(self, e: dict[str, Any]) -> None:
        self.checkpoints.append({k: e.get(k) for k in ("epoch", "step", "path", "reason", "is_best", "metric_value")})

    def _paused(self, e: dict[str, Any]) -> None:
        self.status = PAUSED

    def _resumed(self, e: dict[str, Any]) -> None:
        self.status = RUNNING

    def _warning(self, e: dict[str, Any]) -> None:
        self.warnings = (self.warnings + [str(e.get("message", ""))])[-MAX_MESSAGES:]

    def _error(self, e: dict[str, Any]) -> None:
        self.errors = (self.errors + [{"message": e.get("message", ""), "traceback": e.get("traceback", ""),
                                        "rank": e.get("rank", 0)}])[-MAX_MESSAGES:]

    def _heartbeat(self, e: dict[str, Any]) -> None:
        self.heartbeat = e

    def _run_finished(self, e: dict[str, Any]) -> None:
        self.finished = e
        self.status = FINISHED_STATUS.get(e.get("status"), FAILED)
        self.bad_images = int(e.get("bad_images") or 0)
        if e.get("epochs_completed") is not None:
            self.epoch = int(e["epochs_completed"])

    # ------------------------------------------------------------ derived

    @property
    def best(self) -> dict[str, Any] | None:
        return next((v for v in self.validations if v["is_best"]), None)

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


_HANDLERS = {
    "run_started": RunState._run_started,
    "step": RunState._step,
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
