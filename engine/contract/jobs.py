"""What ``ffdv evaluate|predict --progress json`` tells the program that started it, one JSON line each.

The engine writes progress lines, then one result (or one error); the app reads them
while the job runs. Both sides use these dataclasses, so a field renamed on one side
is a test failure, not a KeyError in the app. Like the events, every line carries ``v``
and ``kind``; a reader skips lines it cannot use and keeps fields it does not know.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from engine.contract.schema import checked_fields, field_specs, missing_required

JOB_PROTOCOL_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class JobMessage:
    kind: ClassVar[str] = ""
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # fields of a newer engine
    problems: tuple[str, ...] = field(default=(), repr=False, compare=False)  # fields left out while decoding


@dataclass(frozen=True, kw_only=True)
class JobProgress(JobMessage):
    """``done`` of ``total`` images scored."""

    kind: ClassVar[str] = "progress"
    done: int
    total: int
    stage: str = ""  # what is being scored (a matrix: "dataset · perturbation")
    eta_s: float | None = None


@dataclass(frozen=True, kw_only=True)
class EvaluationResult(JobMessage):
    """An evaluation's files and metrics (the same metrics as a Validated event)."""

    kind: ClassVar[str] = "evaluation"
    metrics_file: str
    predictions: str
    images: str
    metrics: dict[str, Any]
    unreadable: int = 0
    by_source: dict[str, Any] = field(default_factory=dict)  # source -> its metrics, where the layout names sources


@dataclass(frozen=True, kw_only=True)
class SubmissionResult(JobMessage):
    """A written submission CSV (img_name,y_pred)."""

    kind: ClassVar[str] = "submission"
    submission: str
    rows: int
    unreadable: int = 0


@dataclass(frozen=True, kw_only=True)
class MatrixResult(JobMessage):
    """An evaluation matrix's folder (matrix.csv, scores.parquet, matrix.json) and its rows."""

    kind: ClassVar[str] = "matrix"
    matrix_dir: str
    matrix: str
    scores: str
    rows: list[str] = field(default_factory=list)
    computed_cells: int = 0
    reused_cells: int = 0


@dataclass(frozen=True, kw_only=True)
class JobFailed(JobMessage):
    """The job ended with an input problem; ``message`` says which file and the fix."""

    kind: ClassVar[str] = "error"
    message: str


JOB_TYPES: dict[str, type[JobMessage]] = {cls.kind: cls for cls in (JobProgress, EvaluationResult, SubmissionResult,
                                                                      MatrixResult, JobFailed)}
JobResult = EvaluationResult | SubmissionResult | MatrixResult
_SKIP = frozenset({"extra", "problems"})
_BASE_KEYS = {"v", "kind"}


def job_to_dict(message: JobMessage) -> dict[str, Any]:
    data: dict[str, Any] = {"v": JOB_PROTOCOL_VERSION, "kind": message.kind}
    for f in dataclasses.fields(message):
        if f.name not in _SKIP:
            data[f.name] = getattr(message, f.name)
    data.update(message.extra)
    return data


def encode_job_message(message: JobMessage) -> str:
    """One line (without its newline)."""
    return json.dumps(job_to_dict(message), default=str)


def job_from_dict(data: dict[str, Any]) -> JobMessage | None:
    """The typed message, or None when it is not one this version can use (unknown kind, a required field unusable)."""
    cls = JOB_TYPES.get(data.get("kind"))  # type: ignore[arg-type]
    if cls is None:
        return None
    specs = field_specs(cls, _SKIP)
    good, bad, problems = checked_fields(specs, data)
    if missing_required(specs, good):
        return None
    names = {spec.name for spec in specs}
    extra = {k: v for k, v in data.items() if k not in names and k not in _BASE_KEYS}
    return cls(**good, extra={**extra, **bad}, problems=tuple(problems))


def decode_job_message(line: str | bytes) -> JobMessage | None:
    """A line of a job's output as a typed message; None for anything else (a stray print, a damaged line)."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return job_from_dict(data) if isinstance(data, dict) else None
