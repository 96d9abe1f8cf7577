"""The typed events and commands the engine and its viewers exchange through a run folder.

Standard library only: the app imports this module and must never pull in torch.
Every event is one JSON object on one line of ``events.jsonl``. Readers keep the
fields and kinds they do not know (``extra`` / ``UnknownEvent``) so an older viewer
can follow a run written by a newer engine; ``v`` tells them when that happened.
Decoding checks each known field's type against its annotation: a field of the wrong
type is left out (the default is used, the value kept in ``extra``) and said in the
event's ``problems``, so code that reads a typed event can trust its types.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from engine.contract.schema import checked_fields, field_specs, missing_required
from engine.contract.status import RunOutcome
from engine.contract.text import printable

PROTOCOL_VERSION = 1

# Run outcomes carried by RunFinished.status (short names for RunOutcome's members).
COMPLETED = RunOutcome.COMPLETED
STOPPED = RunOutcome.STOPPED
FAILED = RunOutcome.FAILED

# The metrics of a Validated event, in display order (AUC first), with their short labels.
METRIC_LABELS = {
    "auc": "AUC",
    "ap": "AP",
    "accuracy": "Acc",
    "precision": "Prec",
    "recall": "Recall",
    "f1": "F1",
    "eer": "EER",
    "tpr_at_fpr_1e-3": "TPR@1e-3",
    "ece": "ECE",
    "loss": "Loss",
}

# Commands a viewer may append to commands.jsonl, with the argument names each takes.
COMMANDS: dict[str, tuple[str, ...]] = {
    "pause": (),
    "resume": (),
    "stop": (),
    "checkpoint_now": (),
}


@dataclass(kw_only=True)
class Event:
    """Base of every event; ``seq`` and ``time`` are set by the writer."""

    kind: ClassVar[str] = ""
    seq: int = 0
    time: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    problems: tuple[str, ...] = field(default=(), repr=False, compare=False)  # what decoding left out; not written
    version: int = field(default=PROTOCOL_VERSION, repr=False, compare=False)  # the ``v`` it was read with


@dataclass(kw_only=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    run_id: str
    config: dict[str, Any]
    model: str
    device: str
    epochs: int
    steps_per_epoch: int
    num_train: int
    num_val: int
    start_epoch: int = 0
    world_size: int = 1
    host: str = ""
    pid: int = 0
    versions: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class Step(Event):
    """Training progress, coalesced: ``loss`` is the mean over the steps since the last Step."""

    kind: ClassVar[str] = "step"
    epoch: int
    step: int
    epoch_step: int
    steps_per_epoch: int
    loss: float
    lr: float
    images_per_sec: float


@dataclass(kw_only=True)
class EpochEnded(Event):
    kind: ClassVar[str] = "epoch_ended"
    epoch: int
    train_loss: float
    duration_s: float
    images_per_sec: float


@dataclass(kw_only=True)
class Validated(Event):
    """All detection metrics of one validation; ``metrics`` values are floats or None (undefined)."""

    kind: ClassVar[str] = "validated"
    epoch: int
    metrics: dict[str, Any]
    num_images: int
    best_metric: str
    is_best: bool
    weights: str = "model"  # "model" or "ema": which weights were evaluated


@dataclass(kw_only=True)
class PredictionsWritten(Event):
    kind: ClassVar[str] = "predictions_written"
    epoch: int
    path: str
    count: int


@dataclass(kw_only=True)
class CheckpointSaved(Event):
    kind: ClassVar[str] = "checkpoint_saved"
    epoch: int
    step: int
    path: str
    reason: str  # "epoch", "command", "stop"
    is_best: bool = False
    metric_value: float | None = None


@dataclass(kw_only=True)
class Paused(Event):
    kind: ClassVar[str] = "paused"
    epoch: int
    step: int


@dataclass(kw_only=True)
class Resumed(Event):
    """Training goes on: after a pause (reason "command") or in a new process (reason "restart")."""

    kind: ClassVar[str] = "resumed"
    epoch: int
    step: int
    reason: str = "command"
    checkpoint: str = ""


@dataclass(kw_only=True)
class RunWarning(Event):
    kind: ClassVar[str] = "warning"
    message: str
    code: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class RunError(Event):
    kind: ClassVar[str] = "error"
    message: str
    traceback: str = ""
    rank: int = 0


@dataclass(kw_only=True)
class Heartbeat(Event):
    kind: ClassVar[str] = "heartbeat"
    device: str = ""
    memory_used: int | None = None
    memory_total: int | None = None
    utilization: float | None = None


@dataclass(kw_only=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    status: str  # a RunOutcome
    epochs_completed: int
    best_metric: str = ""
    best_value: float | None = None
    best_epoch: int | None = None
    duration_s: float = 0.0
    bad_images: int = 0
    message: str = ""


@dataclass(kw_only=True)
class UnknownEvent(Event):
    """An event kind this version does not know; its fields stay in ``extra``."""

    kind_name: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        RunStarted,
        Step,
        EpochEnded,
        Validated,
        PredictionsWritten,
        CheckpointSaved,
        Paused,
        Resumed,
        RunWarning,
        RunError,
        Heartbeat,
        RunFinished,
    )
}

_BASE_KEYS = {"v", "seq", "time", "kind"}
_NOT_FIELDS = frozenset({"seq", "time", "extra", "problems", "version"})
# Field names in declaration order (the order they are written in), and as sets for look-ups.
_FIELD_ORDER: dict[type[Event], tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls) if f.name not in _NOT_FIELDS)
    for cls in (*EVENT_TYPES.values(), UnknownEvent)
}
_FIELD_NAMES: dict[type[Event], frozenset[str]] = {cls: frozenset(names) for cls, names in _FIELD_ORDER.items()}
_SPECS = {cls: field_specs(cls, _NOT_FIELDS) for cls in EVENT_TYPES.values()}
# The fast path: a line holding exactly what this version writes, each value of its type (a long replay is all such).
_WRITTEN_KEYS = {cls: frozenset({*_BASE_KEYS, *_FIELD_ORDER[cls]}) for cls in EVENT_TYPES.values()}
_TYPE_CHECKS = {cls: (("seq", frozenset({int})), ("time", frozenset({int, float})),
                      *((spec.name, spec.accepts) for spec in _SPECS[cls] if spec.accepts is not None))
                for cls in EVENT_TYPES.values()}
_new = object.__new__


def event_to_dict(event: Event) -> dict[str, Any]:
    """The JSON object of an event, unknown fields included (they round-trip)."""
    kind = event.kind_name if isinstance(event, UnknownEvent) else event.kind
    data: dict[str, Any] = {"v": PROTOCOL_VERSION, "seq": event.seq, "time": event.time, "kind": kind}
    for name in _FIELD_ORDER[type(event)]:
        if name != "kind_name":
            data[name] = getattr(event, name)
    data.update(event.extra)
    return data


def encode_event(event: Event) -> str:
    """One line of events.jsonl, newline included."""
    return json.dumps(event_to_dict(event), separators=(",", ":"), allow_nan=False, default=str) + "\n"


def event_from_dict(data: dict[str, Any]) -> Event:
    """Build the typed event; unknown kinds become UnknownEvent, unknown fields go to ``extra``.

    Known fields are type-checked: one of the wrong type is left out and said in ``problems``
    (its value kept in ``extra``); without a usable required field the line is kept as an
    UnknownEvent, since a typed event would have to make its value up.
    """
    kind = data.get("kind", "")
    cls = EVENT_TYPES.get(kind) if type(kind) is str else None
    if cls is not None and data.keys() == _WRITTEN_KEYS[cls] and data["v"] == PROTOCOL_VERSION:
        for name, accepts in _TYPE_CHECKS[cls]:
            if type(data[name]) not in accepts:
                break
        else:  # every field there and of its type: fill the instance directly (three times faster than __init__)
            event = _new(cls)
            values = event.__dict__
            values.update(data)
            del values["v"], values["kind"]
            values["extra"] = {}  # problems and version: the class defaults
            return event
    return _event_from_any_dict(data)


def _event_from_any_dict(data: dict[str, Any]) -> Event:
    kind = data.get("kind", "")
    if not isinstance(kind, str):
        raise ValueError(f"'kind' must be a string, not {printable(kind, 40)}")
    version = data.get("v", PROTOCOL_VERSION)
    version = version if type(version) is int else PROTOCOL_VERSION
    seq, t = data.get("seq", 0), data.get("time", 0.0)
    if type(seq) is not int or type(t) not in (float, int):
        raise ValueError(f"'seq' and 'time' must be numbers, not {printable(seq, 40)} and {printable(t, 40)}")
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        extra = {k: v for k, v in data.items() if k not in _BASE_KEYS}
        return UnknownEvent(kind_name=kind, seq=seq, time=float(t), extra=extra, version=version)
    specs = _SPECS[cls]
    good, bad, problems = checked_fields(specs, data)
    names = _FIELD_NAMES[cls]
    extra = {k: v for k, v in data.items() if k not in names and k not in _BASE_KEYS}
    if bad:
        extra.update(bad)
    if problems and missing_required(specs, good):
        return UnknownEvent(kind_name=kind, seq=seq, time=float(t), extra={**extra, **good}, problems=tuple(problems),
                            version=version)
    return cls(**good, seq=seq, time=float(t), extra=extra, problems=tuple(problems), version=version)


def decode_event(line: str | bytes) -> Event:
    """Parse one line; raises ValueError for a line that is not a JSON object."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("an event line must be a JSON object")
    return event_from_dict(data)


def clean_number(value: float | None) -> float | None:
    """JSON has no NaN or infinity: an undefined metric is written as null."""
    if value is None:
        return None
    value = float(value)
    return value if value == value and value not in (float("inf"), float("-inf")) else None
