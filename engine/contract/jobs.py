"""Engine jobs (``ffdv evaluate|predict --progress json``): their command lines, running one, and what it says.

The engine writes progress lines, then one result (or one error); the app reads them
while the job runs. Both sides use these dataclasses, so a field renamed on one side
is a test failure, not a KeyError in the app. Like the events, every line carries ``v``
and ``kind``; a reader skips lines it cannot use and keeps fields it does not know.
The app runs jobs only through ``run_engine_job``, with arguments built here.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from engine.contract.schema import checked_fields, field_specs, missing_required

if TYPE_CHECKING:
    from engine.contract.matrixstore import MatrixSummary

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
class ExplainResult(JobMessage):
    """Class-activation maps written: ``csv`` (img_name,target,score,map,overlay; files relative to ``out_dir``)."""

    kind: ClassVar[str] = "explain"
    out_dir: str
    csv: str
    method: str
    layer: str
    explained: int
    unreadable: dict[str, str] = field(default_factory=dict)  # image name -> why it could not be decoded


@dataclass(frozen=True, kw_only=True)
class JobFailed(JobMessage):
    """The job ended with an input problem; ``message`` says which file and the fix."""

    kind: ClassVar[str] = "error"
    message: str


JOB_TYPES: dict[str, type[JobMessage]] = {cls.kind: cls for cls in (JobProgress, EvaluationResult, SubmissionResult,
                                                                      MatrixResult, ExplainResult, JobFailed)}
JobResult = EvaluationResult | SubmissionResult | MatrixResult | ExplainResult
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


# ---------------------------------------------------------------- the command lines


def checkpoint_job_args(command: str, checkpoint: Path | str, data: Path | str, split: str,
                        out: Path | str | None = None) -> list[str]:
    """``ffdv evaluate|predict`` of one checkpoint; ``--split`` counts when ``data`` is a dataset root."""
    args = [command, "--checkpoint", str(checkpoint), "--data", str(data), "--split", split]
    return args + (["--out", str(out)] if out else [])


def matrix_args(checkpoints: list[str], datasets: list[str], perturbations: list[str], ensembles: list[str],
                tta: list[str], out: str | None = None) -> list[str]:
    """``ffdv evaluate`` arguments for a matrix."""
    from engine.contract.matrixstore import CLEAN  # pandas: not for every reader of job lines

    args = ["evaluate", "--checkpoint", *checkpoints, "--data", *datasets, "--perturb", *(perturbations or [CLEAN])]
    if ensembles:
        args += ["--ensemble", ",".join(ensembles)]
    if tta:
        args += ["--tta", ",".join(tta)]
    if out:
        args += ["--out", out]
    return args


def submission_args(summary: MatrixSummary, row: str, data: str, split: str = "test", out: str | None = None) -> list[str]:
    """``ffdv predict`` arguments that write a submission from one matrix row's model, ensemble, soup or TTA variant."""
    from engine.contract.matrixstore import MatrixStoreError

    base, _, tta = row.partition(" +")
    checkpoints = [c for c in summary.checkpoints if c.get("kind") == "checkpoint"]
    extra: list[str] = []
    if base.startswith("ensemble-"):
        paths = [c["path"] for c in checkpoints]
        extra = ["--ensemble", base.removeprefix("ensemble-")]
    elif base == "soup":
        paths, extra = [c["path"] for c in checkpoints], ["--ensemble", "soup"]
    elif base == "greedy-soup":
        chosen = set(summary.greedy)
        paths, extra = [c["path"] for c in checkpoints if c["key"] in chosen], ["--ensemble", "soup"]
    else:
        member = summary.member(base)
        if member is None:
            raise MatrixStoreError(f"{summary.folder}: no model {row!r} in this matrix")
        paths = [member["path"]]
    if tta:
        extra += ["--tta", tta.replace(" +", ",")]
    args = ["predict", "--checkpoint", *paths, "--data", data, "--split", split, *extra]
    return args + (["--out", out] if out else [])


# ---------------------------------------------------------------- running one


class JobError(Exception):
    """An engine job that failed; the message is the engine's."""


def run_engine_job(args: list[str], on_progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> JobResult:
    """Run ``python -m engine ARGS --progress json``; report progress; return its result."""
    result, error = None, None
    with subprocess.Popen([sys.executable, "-m", "engine", *args, "--progress", "json"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:
            if should_stop is not None and should_stop():
                proc.terminate()
                break
            message = decode_job_message(line)
            if isinstance(message, JobProgress) and on_progress is not None:
                on_progress(message.done, message.total)
            elif isinstance(message, (EvaluationResult, SubmissionResult, MatrixResult, ExplainResult)):
                result = message
            elif isinstance(message, JobFailed):
                error = message.message
        stderr = proc.stderr.read()
        code = proc.wait()
    if should_stop is not None and should_stop():
        raise JobError("cancelled")
    if code != 0 or result is None:
        last = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or [f"exit status {code}"]
        raise JobError(error or last[0])
    return result
