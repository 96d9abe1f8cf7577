"""What a matrix may write into: only a folder it made or marked as its own, and only one matrix at a time.

``ffdv evaluate --out FOLDER`` used to write into any folder and delete what lay under
``cells/``; two matrices into one folder mixed their cells. Now a folder is the matrix's when
it is new or empty (it gets the marker file ``.ffdv-matrix``), when it holds the marker, or
when it holds only what an older ffdv matrix wrote (``matrix.json`` with its settings, and
``matrix.csv``, ``scores.parquet``, ``cells/``, the app's ``submissions/``); anything else is refused with the reason,
before a byte is written. The folder is locked (``flock`` on ``.ffdv-matrix.lock``) while a
matrix writes it, like a run folder: a second matrix into it is refused, naming the holder.
Torch-free, so the app can tell a matrix folder from another one.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.contract.errors import FfdvError
from engine.contract.text import printable

MARKER = ".ffdv-matrix"
LOCK = ".ffdv-matrix.lock"
LEGACY_ENTRIES = {"matrix.json", "matrix.csv", "scores.parquet", "cells", "submissions"}  # submissions: the app's
_held: dict[str, list[int]] = {}  # resolved folder -> [fd, depth]: re-entrant within this process


class MatrixFolderError(FfdvError):
    pass


def _is_legacy_matrix(folder: Path, entries: set[str]) -> bool:
    """A folder an older ffdv matrix wrote (before the marker): its matrix.json and nothing foreign."""
    if not entries <= LEGACY_ENTRIES or "matrix.json" not in entries:
        return False
    try:
        data = json.loads((folder / "matrix.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("settings"), dict) and "rows" in data


def claim_folder(folder: Path) -> None:
    """Make ``folder`` the matrix's (marker file), or refuse one that holds files the tool did not write."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise MatrixFolderError(f"--out {folder}: this is a file, not a folder. Fix: pass a folder for the matrix "
                                "(it will hold matrix.csv, scores.parquet, matrix.json and cells/)")
    if (folder / MARKER).is_file():
        return
    if folder.is_dir():
        try:
            entries = {p.name for p in folder.iterdir()} - {LOCK}
        except OSError as exc:
            raise MatrixFolderError(f"--out {folder}: cannot list this folder ({exc.strerror or exc})") from None
        if entries and not _is_legacy_matrix(folder, entries):
            shown = ", ".join(sorted(entries)[:5]) + (", ..." if len(entries) > 5 else "")
            raise MatrixFolderError(
                f"--out {folder}: this folder was not made by ffdv evaluate (no {MARKER} marker) and holds "
                f"{len(entries)} entries ({shown}); a matrix writes only into its own folder, so nothing was written. "
                "Fix: pass a new or empty folder to --out, or leave --out out (evaluations/<name>/ of the first run)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MARKER).write_text(json.dumps({"made_by": "ffdv evaluate", "format": 1}) + "\n")
    except OSError as exc:
        raise MatrixFolderError(f"--out {folder}: cannot write the matrix folder ({exc.strerror or exc}). "
                                "Fix: pass a folder you can write to") from None


@contextmanager
def matrix_lock(folder: Path) -> Iterator[None]:
    """Hold the folder's lock (re-entrant within one process); another process holding it is refused."""
    key = str(Path(folder).resolve())
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    fd = os.open(Path(folder) / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = printable(os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process", 120)
        os.close(fd)
        raise MatrixFolderError(f"--out {folder}: another matrix is writing this folder ({holder}), and two at once "
                                "would mix their cells. Fix: wait for it to finish, or pass another --out") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    _held[key] = [fd, 1]
    try:
        yield
    finally:
        del _held[key]
        os.close(fd)


@contextmanager
def own_matrix_folder(folder: Path) -> Iterator[None]:
    """Claim the folder, then hold its lock while the matrix writes there."""
    claim_folder(folder)
    with matrix_lock(folder):
        yield
