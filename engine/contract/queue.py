"""The run queue: queued run folders, their order, and the one claim that lets a run start.

A queued run is a run folder with its ``config.toml`` and ``queued.json`` and no engine yet,
so every viewer lists it. What keeps a run from starting twice is ``claim.json``, created
with ``O_EXCL``: whoever creates it (a queue runner, ``ffdv train --resume``, a cancel) owns
the run's one start, and nothing removes it. A run counts as queued only while it has no
claim, no ``engine.json`` and no events, so a forged status or a tampered order record can
make the queue skip a run but never start one twice.

The order and the holds live in ``RUNS/queue.json``, edited under ``RUNS/queue.lock`` and
written atomically; a damaged record loses only the order and the holds (queued runs then go oldest first).
Torch-free: the app lists and edits the queue through this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.contract.errors import FfdvError
from engine.contract.runstore import RunPaths, atomic_write_json, check_run_name, run_folders
from engine.contract.status import RunStatus

QUEUED_FILE = "queued.json"
CLAIM_FILE = "claim.json"
ORDER_FILE = "queue.json"
ORDER_LOCK = "queue.lock"
CANCELLED_BY = "cancel"


def queued_marker(root: Path) -> Path:
    return Path(root) / QUEUED_FILE


def claim_path(root: Path) -> Path:
    return Path(root) / CLAIM_FILE


def read_json_dict(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------- one run


def mark_queued(paths: RunPaths) -> None:
    """Make a fresh run folder a queued run (before its config.toml is written, so it never looks crashed)."""
    atomic_write_json(queued_marker(paths.root), {"queued_at": time.time(), "host": socket.gethostname()})


def claim(root: Path, by: str, **fields: Any) -> bool:
    """Take the run's one start (or its cancel): True for exactly one caller, ever."""
    try:
        fd = os.open(claim_path(root), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        record = {"by": by, "pid": os.getpid(), "host": socket.gethostname(), "time": time.time(), **fields}
        os.write(fd, json.dumps(record).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def claim_to_start_now(paths: RunPaths) -> None:
    """A queued run started by hand (``ffdv train --resume``): it takes the run's one start from the queue."""
    if not queued_marker(paths.root).exists():
        return
    if (read_claim(paths.root) or {}).get("by") == CANCELLED_BY:
        raise FfdvError(f"{paths.root}: the run was cancelled from the queue; start it again as a new run with "
                        f"`ffdv train --config {paths.config}`")
    if not paths.engine.exists() and not claim(paths.root, "ffdv train --resume"):
        raise FfdvError(f"{paths.root}: a queue runner is starting this run right now; watch it with "
                        f"`ffdv watch {paths.root}`")


def read_claim(root: Path) -> dict[str, Any] | None:
    """The claim's record; ``{}`` for a claim file that cannot be read (it still counts as claimed)."""
    path = claim_path(root)
    if not path.exists():
        return None
    return read_json_dict(path) or {}


def queue_status(paths: RunPaths) -> RunStatus | None:
    """QUEUED or CANCELLED for a queued run folder that has no engine and no events; None for any other run."""
    if not queued_marker(paths.root).exists():
        return None
    record = read_claim(paths.root)
    if record is not None:
        return RunStatus.CANCELLED if record.get("by") == CANCELLED_BY else None
    return None if paths.engine.exists() else RunStatus.QUEUED


def is_startable(paths: RunPaths) -> bool:
    """Queued, unclaimed, never started: the only runs a runner may claim."""
    if queue_status(paths) != RunStatus.QUEUED:
        return False
    try:
        return paths.events.stat().st_size == 0
    except FileNotFoundError:
        return True
    except OSError:
        return False


def queued_at(root: Path) -> float:
    value = (read_json_dict(queued_marker(root)) or {}).get("queued_at")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    with contextlib.suppress(OSError):
        return queued_marker(root).stat().st_mtime
    return 0.0


# ---------------------------------------------------------------- the order record


@dataclass
class QueueOrder:
    """``RUNS/queue.json``: the runs in the order they start, and those held back."""

    order: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    problem: str = ""  # why the record was not read (it is then rewritten from the runs themselves)


def read_order(runs_root: Path) -> QueueOrder:
    """The record as far as it makes sense: names that are not run names, repeats and other types are dropped."""
    path = Path(runs_root) / ORDER_FILE
    if not path.exists():
        return QueueOrder()
    data = read_json_dict(path)
    if data is None:
        return QueueOrder(problem=f"{path}: not a JSON object; the queue goes oldest first")

    def names(key: str) -> list[str]:
        value = data.get(key)
        found: list[str] = []
        for name in value if isinstance(value, list) else []:
            if isinstance(name, str) and name not in found:
                with contextlib.suppress(ValueError):
                    found.append(check_run_name(name))
        return found

    return QueueOrder(order=names("order"), held=names("held"))


@contextlib.contextmanager
def editing_order(runs_root: Path) -> Iterator[QueueOrder]:
    """The order record under ``queue.lock``; written back atomically when the block ends without an error."""
    runs_root = Path(runs_root)
    runs_root.mkdir(parents=True, exist_ok=True)
    fd = os.open(runs_root / ORDER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        with contextlib.suppress(ImportError):
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        record = read_order(runs_root)
        yield record
        atomic_write_json(runs_root / ORDER_FILE, {"order": record.order, "held": record.held})
    finally:
        os.close(fd)  # closing drops the lock


def append_to_queue(runs_root: Path, name: str) -> None:
    with editing_order(runs_root) as record:
        if name not in record.order:
            record.order.append(name)


# ---------------------------------------------------------------- the queue


def queued_in_order(runs_root: Path, record: QueueOrder | None = None) -> list[str]:
    """The queued runs' names in the order they start: the record's order, then the others oldest first."""
    record = record or read_order(runs_root)
    waiting = {p.name: queued_at(p) for p in run_folders(runs_root) if is_startable(RunPaths(p))}
    listed = [name for name in record.order if name in waiting]
    rest = sorted((name for name in waiting if name not in listed), key=lambda name: (waiting[name], name))
    return listed + rest


def next_to_start(runs_root: Path) -> list[str]:
    """Queued runs that are not held, in order."""
    record = read_order(runs_root)
    return [name for name in queued_in_order(runs_root, record) if name not in record.held]


def _queued_run(runs_root: Path, name: str) -> str:
    try:
        check_run_name(name)
    except ValueError as exc:
        raise FfdvError(str(exc)) from None
    paths = RunPaths(Path(runs_root) / name)
    if not paths.config.is_file():
        raise FfdvError(f"{paths.root}: no run folder with a config.toml. Fix: see `ffdv queue --runs {runs_root}`")
    if not is_startable(paths):
        raise FfdvError(f"{paths.root}: the run is not waiting in the queue (it started, finished or was cancelled)")
    return name


def hold(runs_root: Path, name: str) -> None:
    """Keep a queued run waiting: the runner passes over it until it is released."""
    _queued_run(runs_root, name)
    with editing_order(runs_root) as record:
        if name not in record.held:
            record.held.append(name)


def release(runs_root: Path, name: str) -> None:
    _queued_run(runs_root, name)
    with editing_order(runs_root) as record:
        record.held = [n for n in record.held if n != name]


def cancel(runs_root: Path, name: str) -> None:
    """Take a queued run off the queue for good: its folder stays (status cancelled), it never starts."""
    _queued_run(runs_root, name)
    if not claim(Path(runs_root) / name, CANCELLED_BY):
        raise FfdvError(f"{name}: a queue runner started it a moment ago; stop it with `ffdv stop {name}`")
    with editing_order(runs_root) as record:
        record.order = [n for n in record.order if n != name]
        record.held = [n for n in record.held if n != name]


def move(runs_root: Path, name: str, position: int) -> int:
    """Put a queued run at ``position`` (1: next to start; past the end: last); returns where it went."""
    _queued_run(runs_root, name)
    with editing_order(runs_root) as record:
        order = [n for n in queued_in_order(runs_root, record) if n != name]
        index = min(max(position, 1), len(order) + 1) - 1
        order.insert(index, name)
        record.order = order
    return index + 1
