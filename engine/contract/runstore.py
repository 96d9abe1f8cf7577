"""The run folder: the queue between the engine and every viewer.

Standard library only (the app imports it). The engine appends events, viewers
append commands; both files are append-only JSON lines, so any number of readers
can follow a run while it is written, and a half-written last line (a kill
mid-write) is simply not read yet. Files that must never be seen half-done are
written to a temporary name and renamed into place.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.contract.errors import StorageError
from engine.contract.protocol import COMMANDS, Event, decode_event, encode_event, event_from_dict
from engine.contract.text import printable

try:  # about ten times faster than json for replaying a long run; the standard library works too
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    from json import loads as _loads


@dataclass(frozen=True)
class RunPaths:
    """Where each part of a run lives (ARCHITECTURE.md, the run folder).

    ``node`` > 0: another machine of a several-machine run, sharing the folder; its engine's
    own files (log, pids, exit) get the node in their names, everything else is rank 0's.
    """

    root: Path
    node: int = 0

    def _own(self, stem: str, suffix: str) -> Path:
        return self.root / (f"{stem}{suffix}" if self.node == 0 else f"{stem}-node{self.node}{suffix}")

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def commands(self) -> Path:
        return self.root / "commands.jsonl"

    @property
    def log(self) -> Path:
        return self._own("engine", ".log")

    @property
    def engine(self) -> Path:
        return self._own("engine", ".json")

    @property
    def exit(self) -> Path:
        return self._own("exit", ".json")

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    @property
    def submissions(self) -> Path:
        return self.root / "submissions"

    @property
    def evaluations(self) -> Path:
        return self.root / "evaluations"

    @property
    def bad_images(self) -> Path:
        return self.root / "bad_images.txt"

    def rank_error(self, rank: int) -> Path:
        """Where a process other than rank 0 leaves its error (only rank 0 writes events)."""
        return self.root / f"rank-{rank}-error.json"

    def rank_errors(self) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.root.glob("rank-*-error.json")):
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return found


# ---------------------------------------------------------------- atomic files


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is synced and renamed over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # some writers (safetensors) create private files
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if not isinstance(exc, OSError) and isinstance(exc, Exception) and _disk_full(path.parent):
            # torch.save on a full disk says only "RuntimeError: ... unexpected pos": say what happened
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
        if isinstance(exc, OSError) and exc.errno and (not exc.filename or exc.filename == str(tmp)):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc  # a failed write() names no file: name ours
        raise
    _fsync_dir(path.parent)


def _disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < DISK_FULL_BYTES
    except OSError:
        return False


DISK_FULL_BYTES = 1 << 20  # less free than this after a failed write: the disk was full
_TEMPORARY = re.compile(r"^\..+\.tmp-(\d+)(?:-[0-9a-f]+)?$")


def remove_leftover_temporaries(folder: Path | str) -> list[Path]:
    """Delete the ``.NAME.tmp-PID-*`` files a killed writer left in ``folder`` (a checkpoint's can be
    gigabytes); those of a writer that still lives are left alone. Returns what was removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if not match or entry.is_dir(follow_symlinks=False):
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and _process_exists(pid):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def _process_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path | str, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False, default=str) + "\n")


# ---------------------------------------------------------------- run folders

_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def check_run_name(name: str) -> str:
    """A run name is one folder name: letters, digits and ``._+-``, no path."""
    if not _NAME_OK.fullmatch(name):
        raise ValueError(
            f"run name {printable(name, 120)!r}{f' ({len(name)} characters)' if len(name) > 120 else ''} is not usable "
            "as a folder name: use letters, digits, '.', '_', '+' or '-' "
            "(at most 128 characters, not starting with a dot)"
        )
    return name


def is_run_folder(folder: Path) -> bool:
    """A run folder is one with a config.toml (written before its engine starts)."""
    return (folder / "config.toml").is_file()


def run_folders(runs_root: Path | str) -> list[Path]:
    """Every run folder in ``runs_root``, by name; none when it is missing or cannot be read."""
    try:
        return sorted(folder for folder in Path(runs_root).iterdir() if is_run_folder(folder))
    except OSError:
        return []


def create_run_dir(runs_root: Path | str, name: str | None, default_stem: str = "run") -> RunPaths:
    """Make ``RUNS/<name>``; a taken name gets ``-2``, ``-3`` ...; no (or an empty) name gets a timestamp."""
    runs_root = Path(runs_root)
    if runs_root.exists() and not runs_root.is_dir():
        raise StorageError(f"{runs_root}: --runs names a file, but it must be the folder that holds the run folders "
                           "(it is created when missing). Fix: pass another folder with --runs, or move the file.")
    runs_root.mkdir(parents=True, exist_ok=True)
    stem = check_run_name(name) if name else f"{time.strftime('%Y%m%d-%H%M%S')}-{default_stem}"
    for attempt in range(1, 10_000):
        candidate = runs_root / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return RunPaths(candidate)
    raise RuntimeError(f"no free run folder name for {stem!r} in {runs_root}")


def write_engine_info(paths: RunPaths, **fields: Any) -> None:
    """engine.json: who runs this folder (pid, host, start time), for liveness checks."""
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), **fields}
    atomic_write_json(paths.engine, info)


# ---------------------------------------------------------------- events


def _last_seq(path: Path) -> int:
    """The highest seq in an existing log (read from its tail), 0 for none."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    with open(path, "rb") as fh:
        window = 1 << 16
        while True:
            start = max(0, size - window)
            fh.seek(start)
            lines = fh.read(size - start).split(b"\n")
            if start > 0:
                lines = lines[1:]  # the first piece may be the end of a longer line
            for line in reversed(lines):
                with contextlib.suppress(ValueError):
                    return decode_event(line).seq
            if start == 0:
                return 0
            window *= 4


class EventWriter:
    """Appends events to events.jsonl: one ``write`` per line on an O_APPEND file, never waits for readers."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._seq = _last_seq(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(self._fd).st_size
        if size:
            with open(self.path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":  # a killed writer left half a line: end it so ours stays whole
                    os.write(self._fd, b"\n")

    @property
    def seq(self) -> int:
        return self._seq

    def emit(self, event: Event) -> Event:
        self._seq += 1
        event.seq = self._seq
        event.time = round(time.time(), 3)
        os.write(self._fd, encode_event(event).encode("utf-8"))
        return event

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JsonLinesTail:
    """Reads the complete lines appended to a file since the last call; keeps a half-written one for later."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.offset = 0
        self.lines_read = 0
        self.error = ""  # why the last read failed (a folder, no permission), "" when it worked or found nothing
        self._partial = b""

    def read_chunk(self) -> tuple[int, list[bytes]]:
        """(number of the first new line, the new complete lines, blank ones included)."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return self.lines_read + 1, []
        except OSError as exc:  # a folder, no permission, an I/O error: nothing to read, and the reason
            self.error = f"{self.path}: cannot be read ({exc.strerror or type(exc).__name__})"
            return self.lines_read + 1, []
        self.error = ""
        if not chunk:
            return self.lines_read + 1, []
        self.offset += len(chunk)
        pieces = (self._partial + chunk).split(b"\n")
        self._partial = pieces.pop()
        first = self.lines_read + 1
        self.lines_read += len(pieces)
        return first, pieces

    def read_lines(self) -> list[tuple[int, bytes]]:
        first, pieces = self.read_chunk()
        return [(first + i, piece) for i, piece in enumerate(pieces) if piece.strip()]


def _parse_objects(first: int, lines: list[bytes], path: Path, problems: list[str]) -> list[dict[str, Any]]:
    """JSON objects of the lines: all at once when every line is fine (the replay of a long run), else line by line."""
    try:
        objects = [_loads(line) for line in lines if line and line != b"\r"]
        if all(type(o) is dict for o in objects):
            return objects
    except ValueError:
        pass
    objects = []
    for number, line in enumerate(lines, first):
        if not line.strip():
            continue
        try:
            obj = _loads(line)
        except ValueError as exc:
            problems.append(f"{path}:{number}: unreadable line skipped ({str(exc).splitlines()[0][:120]})")
            continue
        if type(obj) is not dict:
            problems.append(f"{path}:{number}: line skipped (not a JSON object)")
            continue
        objects.append(obj)
    return objects


REPLAY_BATCH = 20_000  # events decoded at a time by a replay: bounded memory, and young objects for the collector


class EventReader:
    """Follows events.jsonl: each poll returns what was appended since; bad lines are reported and skipped."""

    def __init__(self, path: Path | str, from_seq: int = 0):
        self._tail = JsonLinesTail(path)
        self.from_seq = from_seq
        self.problems: list[str] = []
        self._said = ""

    @property
    def error(self) -> str:
        """Why the log could not be read at the last poll ("" when it could, or does not exist yet)."""
        return self._tail.error

    def poll_dicts(self) -> list[dict[str, Any]]:
        """The new events as plain dicts: the fast path for replaying and summarising long runs."""
        first, lines = self._tail.read_chunk()
        if self._tail.error != self._said:  # said once, not at every poll
            self._said = self._tail.error
            if self._said:
                self.problems.append(self._said)
        if not lines:
            return []
        objects = _parse_objects(first, lines, self._tail.path, self.problems)
        if self.from_seq > 0:
            objects = [o for o in objects if isinstance(o.get("seq"), int) and o["seq"] >= self.from_seq]
        return objects

    def poll(self) -> list[Event]:
        """The new events, typed (field types checked; see ``protocol.event_from_dict``)."""
        return self._typed(self.poll_dicts())

    def poll_batches(self, size: int = REPLAY_BATCH) -> Iterator[list[Event]]:
        """The new events, typed, a batch at a time: a replay that folds and drops them holds one batch."""
        objects = self.poll_dicts()
        for start in range(0, len(objects), size):
            yield self._typed(objects[start : start + size])

    def _typed(self, objects: list[dict[str, Any]]) -> list[Event]:
        events = []
        with collector_paused() if len(objects) > 1000 else contextlib.nullcontext():
            for data in objects:
                try:
                    events.append(event_from_dict(data))
                except ValueError as exc:
                    self.problems.append(f"{self._tail.path}: event skipped ({exc})")
        return events


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Decoding a long log makes many small objects and no reference cycles, yet each pass of the cyclic
    collector would walk the whole log again: paused, a replay runs several times faster."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_events(path: Path | str, from_seq: int = 0) -> list[Event]:
    """Every complete event of a log (a replay)."""
    return EventReader(path, from_seq).poll()


# ---------------------------------------------------------------- commands


def new_command_id() -> str:
    return uuid.uuid4().hex[:12]


def append_command(paths: RunPaths, name: str, command_id: str | None = None, **args: Any) -> str:
    """Ask the engine of a run to do something; returns the command id its answer will carry."""
    if name not in COMMANDS:
        raise ValueError(f"unknown command {name!r}; known: {', '.join(COMMANDS)}")
    command_id = command_id or new_command_id()
    line = json.dumps({"id": command_id, "time": time.time(), "name": name, "args": args}) + "\n"
    fd = os.open(paths.commands, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
    return command_id


@dataclass(frozen=True)
class Command:
    id: str
    name: str
    args: dict[str, Any]
    line_no: int


class CommandReader:
    """The engine's side of commands.jsonl; ``poll`` is cheap enough to call at every step."""

    def __init__(self, path: Path | str, skip_existing: bool = True):
        self._tail = JsonLinesTail(path)
        self._last_size = -1
        if skip_existing:  # commands written for an earlier process of this run are not replayed
            self._tail.read_lines()

    def poll(self) -> tuple[list[Command], list[str]]:
        """New commands, and messages about lines that could not be read."""
        try:
            size = os.stat(self._tail.path).st_size
        except FileNotFoundError:
            return [], []
        if size == self._last_size:
            return [], []
        self._last_size = size
        commands, problems = [], []
        for line_no, line in self._tail.read_lines():
            try:
                data = json.loads(line)
                if not isinstance(data, dict) or not isinstance(data.get("name"), str):
                    raise ValueError("expected an object with a 'name'")
                args = data.get("args") or {}
                if not isinstance(args, dict):
                    raise ValueError("'args' must be an object")
            except ValueError as exc:
                problems.append(f"{self._tail.path}:{line_no}: unreadable command skipped ({exc})")
                continue
            commands.append(Command(str(data.get("id", "")), data["name"], args, line_no))
        return commands, problems
