"""Errors a user can fix: each message names the file, the line and the fix.

The CLI prints these without a traceback; anything else is a bug and keeps its traceback.
Torch-free, so the app can show the same words as the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LISTED = 20


class FfdvError(Exception):
    """Base of every user-fixable error."""


class ConfigError(FfdvError):
    pass


class DataError(FfdvError):
    pass


class CheckpointError(FfdvError):
    pass


class ModelError(FfdvError):
    pass


@dataclass(frozen=True)
class Problem:
    """One offending line of an input file."""

    line: int | None  # 1-based; None when the problem is the whole file
    message: str


def format_problems(path: object, what: str, problems: list[Problem], fix: str) -> str:
    """``path: what`` then up to MAX_LISTED offenders with their line numbers, the total, and the fix."""
    lines = [f"{path}: {what}"]
    for problem in problems[:MAX_LISTED]:
        where = f"line {problem.line}: " if problem.line is not None else ""
        lines.append(f"  {where}{problem.message}")
    if len(problems) > MAX_LISTED:
        lines.append(f"  ... and {len(problems) - MAX_LISTED} more ({len(problems)} in total)")
    elif len(problems) > 1:
        lines.append(f"  ({len(problems)} in total)")
    lines.append(f"Fix: {fix}")
    return "\n".join(lines)
