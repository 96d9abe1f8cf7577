"""What a viewer knows about a run, folded from its events: status, progress, curves, metrics.

Torch-free (the app uses it). ``RunState.apply`` folds typed events, decoded once
(their field types already checked), and is the only fold: the engine's console and
the app both show a RunState. The same fold serves a replay from the start and a live
follow. The training-loss curve is kept at a bounded
resolution (adjacent points are merged pairwise when it grows past its limit), so a
100-epoch run costs the same to hold and draw as a short one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from engine.contract.protocol import (
    PROTOCOL_VERSION,
    CheckpointSaved,
    EpochEnded,
    Event,
    Heartbeat,
    Paused,
    PredictionsWritten,
    Resumed,
    RunError,
    RunFinished,
    RunStarted,
    RunWarning,
    Step,
    UnknownEvent,
    Validated,
)
from engine.contract.runstore import EventReader, RunPaths, collector_paused
from engine.contract.status import LIVE_STATUSES, RunStatus
from engine.contract.text import printable

CURVE_POINTS = 2000
MAX_MESSAGES = 200

__all__ = ["LIVE_STATUSES", "Curve", "RunFollower", "RunState", "RunStatus", "load_run", "training_eta"]


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
    validations: dict[int, Validated] = field(default_factory=dict)  # epoch -> its newest validation
    best_metric: str = "auc"
    best_epoch: int | None = None
    checkpoints: list[CheckpointSaved] = field(default_factory=list)
    predictions: dict[int, str] = field(default_factory=dict)  # epoch -> path inside the run folder
    warnings: list[str] = field(default_factory=list)
    leaky_validation: str = ""  # the run's "leaky_validation" warning: the last leakage audit flagged its validation split
    errors: list[RunError] = field(default_factory=list)
    heartbeat: Heartbeat | None = None
    started_at: float | None = None
    session_started: float | None = None  # the running engine's run_started time
    earlier_sessions_s: float = 0.0  # how long the engines that ended ran (a resumed run had several)
    finished: RunFinished | None = None
    last_time: float | None = None
    last_seq: int = 0
    newer_protocol: int | None = None  # a log written by a newer engine: shown, read as far as understood
    bad_images: int = 0

    problems: list[str] = field(default_factory=list)  # what could not be read: the log file, lines, fields

    # ------------------------------------------------------------ folding

    def apply(self, events: Sequence[Event]) -> None:
        """Fold typed events in order. Step events, nearly all of a long log, are folded in bulk."""
        if not events:
            return
        pending = None  # the newest step not yet taken: progress fields need only the last one
        steps = []
        for event in events:
            if type(event) is Step:
                pending = event
                steps.append(event)
                continue
            if event.problems:
                self._note(event)
            if pending is not None and type(event) in _MOVES_PROGRESS:
                self._take_step(pending)
                pending = None
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(self, event)
        if pending is not None:
            self._take_step(pending)
        if steps:
            add = self.loss.add
            for e in steps:
                add(e.step, e.loss)
        last = events[-1]
        self.last_seq = max(self.last_seq, last.seq)
        self.last_time = last.time
        if last.version > PROTOCOL_VERSION:
            self.newer_protocol = last.version

    def note_problems(self, problems: Iterable[str]) -> None:
        """Problems found outside the events (the log file unreadable, a line that is not JSON)."""
        for problem in problems:
            self.problems = (self.problems + [problem])[-MAX_MESSAGES:]
            self.warnings = (self.warnings + [problem])[-MAX_MESSAGES:]

    def _note(self, e: Event) -> None:
        kind = e.kind_name if isinstance(e, UnknownEvent) else e.kind
        self.note_problems([f"event {e.seq} ({printable(kind, 40)}): {'; '.join(e.problems)}"])

    def _run_started(self, e: RunStarted) -> None:
        self.run_id = e.run_id or self.run_id
        self.status = RunStatus.RUNNING
        self.finished = None
        self.config = e.config
        self.model = e.model
        self.device = e.device
        self.world_size = e.world_size
        self.epochs = e.epochs
        self.steps_per_epoch = e.steps_per_epoch
        self.num_train = e.num_train
        self.num_val = e.num_val
        self.epoch = e.start_epoch
        train = e.config.get("train")
        metric = train.get("best_metric") if isinstance(train, dict) else None
        self.best_metric = metric if isinstance(metric, str) else "auc"
        if self.started_at is None:
            self.started_at = e.time
        self.session_started = e.time

    def _take_step(self, e: Step) -> None:
        self.epoch = e.epoch
        self.epoch_step = e.epoch_step
        self.step = e.step
        self.steps_per_epoch = e.steps_per_epoch
        self.lr = e.lr
        self.images_per_sec = e.images_per_sec

    def _epoch_ended(self, e: EpochEnded) -> None:
        self.epoch_losses[e.epoch + 1] = e.train_loss
        self.epoch = e.epoch + 1
        self.epoch_step = 0

    def _validated(self, e: Validated) -> None:
        self.validations.pop(e.epoch, None)  # a resumed run validates an epoch again: the newer one counts
        self.validations[e.epoch] = e
        if e.is_best:
            self.best_epoch = e.epoch

    def _predictions_written(self, e: PredictionsWritten) -> None:
        self.predictions[e.epoch] = e.path

    def _checkpoint_saved(self, e: CheckpointSaved) -> None:
        self.checkpoints.append(e)

    def _paused(self, e: Paused) -> None:
        """Where the engine says it stopped (steps are logged only every few): its step, and no speed while paused."""
        self.status = RunStatus.PAUSED
        self.epoch = e.epoch
        self.step = e.step
        if self.steps_per_epoch:
            self.epoch_step = min(max(e.step - e.epoch * self.steps_per_epoch, 0), self.steps_per_epoch)
        self.images_per_sec = None

    def _resumed(self, e: Resumed) -> None:
        self.status = RunStatus.RUNNING

    def _warning(self, e: RunWarning) -> None:
        self.warnings = (self.warnings + [e.message])[-MAX_MESSAGES:]
        if e.code == "leaky_validation":
            self.leaky_validation = e.message

    def _error(self, e: RunError) -> None:
        self.errors = (self.errors + [e])[-MAX_MESSAGES:]

    def _heartbeat(self, e: Heartbeat) -> None:
        self.heartbeat = e

    def _run_finished(self, e: RunFinished) -> None:
        if self.session_started is not None:  # the engine's own count, so "elapsed" matches its "completed in"
            self.earlier_sessions_s += e.duration_s if e.duration_s > 0 else max(0.0, e.time - self.session_started)
            self.session_started = None
        self.finished = e
        self.status = RunStatus.of_outcome(e.status)
        self.bad_images = e.bad_images
        self.epoch = e.epochs_completed

    # ------------------------------------------------------------ derived

    @property
    def best(self) -> Validated | None:
        return self.validations.get(self.best_epoch) if self.best_epoch is not None else None

    @property
    def best_value(self) -> float | None:
        best = self.best
        value = best.metrics.get(self.best_metric) if best else None
        return value if type(value) in (int, float) else None

    @property
    def duration(self) -> float | None:
        """How long the run's engines have run: each finished one as it reported it, and the current one so far.

        Time between a stop and a resume does not count: "elapsed" beside an engine's "run completed after 3 epochs
        in 0:42" says 0:42 too.
        """
        if self.started_at is None:
            return None
        if self.session_started is None:
            return self.earlier_sessions_s
        end = self.last_time or time.time()
        return self.earlier_sessions_s + max(0.0, end - self.session_started)

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    def eta_seconds(self) -> float | None:
        """Training time left at the current speed (see :func:`training_eta`); None for a run that is not live."""
        return training_eta(self) if self.is_live else None


class TrainingProgress(Protocol):
    """Where training stands: a RunState, or a frozen snapshot of one."""

    epochs: int
    epoch: int
    epoch_step: int
    steps_per_epoch: int
    num_train: int
    images_per_sec: float | None


def training_eta(p: TrainingProgress) -> float | None:
    """Training time left at the current speed (validation not counted); None when it cannot be told.

    The one ETA of the project: the console and the app both show this.
    """
    if not p.images_per_sec or not p.steps_per_epoch or not p.epochs:
        return None
    steps_left = (p.epochs - p.epoch) * p.steps_per_epoch - p.epoch_step
    images_per_step = p.num_train / p.steps_per_epoch if p.num_train else 0
    return max(0.0, steps_left * images_per_step / p.images_per_sec) if images_per_step else None


_MOVES_PROGRESS = frozenset({RunStarted, EpochEnded, RunFinished, Paused})
_HANDLERS: dict[type[Event], Callable[[RunState, Any], None]] = {
    RunStarted: RunState._run_started,
    EpochEnded: RunState._epoch_ended,
    Validated: RunState._validated,
    PredictionsWritten: RunState._predictions_written,
    CheckpointSaved: RunState._checkpoint_saved,
    Paused: RunState._paused,
    Resumed: RunState._resumed,
    RunWarning: RunState._warning,
    RunError: RunState._error,
    Heartbeat: RunState._heartbeat,
    RunFinished: RunState._run_finished,
}


class RunFollower:
    """A RunState kept up to date from a run folder: ``poll()`` reads what was appended since the last call."""

    def __init__(self, run_dir: Path | str):
        self.paths = RunPaths(Path(run_dir))
        self.state = RunState(run_id=self.paths.root.name)
        self.reader = EventReader(self.paths.events)
        self._problems_seen = 0

    @property
    def problem(self) -> str | None:
        """Why the event log cannot be read right now (a folder, no permission); None when it can."""
        return self.reader.error or None

    def poll(self) -> list[Event]:
        """The new events (decoded once), already folded into ``state``."""
        with collector_paused():
            events = self.reader.poll()
            self._fold(events)
        return events

    def replay(self) -> None:
        """Fold everything new without keeping the events: a long log in bounded memory."""
        with collector_paused():
            for batch in self.reader.poll_batches():
                self._fold(batch)
            self._fold([])  # problems of a log with no event to read (a folder, no permission)

    def _fold(self, events: list[Event]) -> None:
        if events:
            self.state.apply(events)
        if len(self.reader.problems) > self._problems_seen:
            self.state.note_problems(self.reader.problems[self._problems_seen:])
            self._problems_seen = len(self.reader.problems)


def load_run(run_dir: Path | str) -> RunState:
    """The state of a run from its whole log (a replay)."""
    follower = RunFollower(run_dir)
    follower.replay()
    return follower.state
