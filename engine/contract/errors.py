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


class StorageError(FfdvError):
    """A file or folder that cannot be written: full, read-only, not allowed, or something else in the way."""


def storage_error(exc: OSError, path: object = None) -> StorageError | None:
    """The one-paragraph message (path, cause, fix) for a file-system failure a user can fix; None for others."""
    import errno

    where = path or exc.filename or "a file"
    fixes = {
        errno.ENOSPC: "the disk that holds it is full. Nothing was half-written. Fix: free space there, or write "
                      "elsewhere (--runs for runs, --out for results).",
        errno.EDQUOT: "the disk quota is used up. Nothing was half-written. Fix: free space, or write elsewhere "
                      "(--runs, --out).",
        errno.EROFS: "the file system is read-only. Fix: pass a writable folder (--runs for runs, --out for results).",
        errno.EACCES: "permission denied. Fix: pass a folder you may write to (--runs, --out), or change its "
                      "permissions.",
        errno.EPERM: "the operation is not permitted there. Fix: pass a folder you may write to (--runs, --out).",
        errno.ENOTDIR: "a file is in the way where a folder is needed. Fix: pass a folder (or a path that does not exist "
                       "yet), or move the file.",
        errno.EEXIST: "a file is in the way where a folder is needed. Fix: pass a folder (or a path that does not exist "
                      "yet), or move the file.",
        errno.EISDIR: "it is a folder where a file is needed. Fix: pass a file name (e.g. FOLDER/result.json).",
    }
    fix = fixes.get(exc.errno)
    if fix is None:
        return None
    return StorageError(f"{where}: cannot write here: {fix}")
