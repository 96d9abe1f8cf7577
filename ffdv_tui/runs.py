"""Every run under the runs folder, followed from one background thread that hands out frozen snapshots.

The watcher thread alone owns the followers (file offsets, folded RunStates) and calls
``poll`` about ten times a second. The selected run is read every poll; the others
once a second, so a folder of a hundred runs costs a few stat calls. Each poll that saw
something new returns a :class:`RunsUpdate`: a snapshot of every run (unchanged ones
are the same objects as before), which runs changed, and the engine's answers to
commands. The app never reads the followers, so no lock is needed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from engine.contract.launch import Exit, engine_exit, log_tail, run_status
from engine.contract.protocol import Event
from engine.contract.runstate import RunFollower
from engine.contract.runstore import RunPaths, run_folders
from engine.contract.status import RunStatus
from engine.contract.timm_run import TimmFollower, timm_folders
from ffdv_tui.run_snapshot import RunSnapshot

BACKGROUND_POLL_S = 1.0
SCAN_INTERVAL_S = 1.0
LIVENESS_INTERVAL_S = 1.0


@dataclass
class RunEntry:
    """One run folder as the watcher follows it (the watcher thread's own, never shared)."""

    name: str
    paths: RunPaths
    follower: RunFollower
    status: RunStatus = RunStatus.STARTING
    exit: Exit | None = None
    log: list[str] = field(default_factory=list)
    next_poll: float = 0.0
    next_liveness: float = 0.0
    log_mtime: float = -1.0
    problem: str | None = None  # why its folder cannot be read (listed with it, never a crash)
    read: bool = False  # its log has been read once (before that it is not listed)
    mtime: float = 0.0  # of its event log when found: the newest runs are read first

    def snapshot(self) -> RunSnapshot:
        return RunSnapshot.of(self.name, self.paths, self.follower.state, self.status, self.exit, self.log,
                              self.problem)


@dataclass(frozen=True)
class Answer:
    """The engine's event answering a command the app sent (matched by command id)."""

    run: str
    command_id: str
    event: Event


@dataclass(frozen=True)
class RunsUpdate:
    """Every run as of one poll: ``changed`` names the runs that are new, gone or different."""

    runs: Mapping[str, RunSnapshot]
    changed: frozenset[str] = frozenset()
    answers: tuple[Answer, ...] = ()
    complete: bool = True  # every run folder found so far has been read at least once


def ordered(runs: Mapping[str, RunSnapshot]) -> list[RunSnapshot]:
    """Newest first (by start time, else folder mtime, then name)."""
    return sorted(runs.values(), key=lambda r: (r.started_at or _mtime(r.paths.root), r.name), reverse=True)


class RunsModel:
    def __init__(self, runs_dir: Path | str, log_lines: int = 12):
        self.runs_dir = Path(runs_dir)
        self.runs: dict[str, RunEntry] = {}
        self.snapshots: dict[str, RunSnapshot] = {}
        self.selected: str | None = None  # set by the app: that run is read every poll, with its log
        self.log_lines = log_lines
        self._next_scan = 0.0
        self._reported = False  # the first poll always reports (an empty folder is news too)
        self.pending_commands: dict[str, str] = {}  # command id -> run name

    # ------------------------------------------------------------ the watcher thread

    @property
    def behind(self) -> bool:
        """Some run folder found has not been read yet (a poll with a budget left it for the next one)."""
        return any(not entry.read for entry in self.runs.values())

    def poll(self, now: float | None = None, budget: float | None = None) -> RunsUpdate | None:
        """Read what is new; None when nothing changed and no command was answered.

        With a ``budget`` (seconds), runs not read yet are read newest first and the poll
        returns once the budget is spent, so the first runs show while the rest are read.
        """
        now = time.monotonic() if now is None else now
        started = time.monotonic()
        changed: set[str] = set()
        answers: list[Answer] = []
        if now >= self._next_scan:
            self._next_scan = now + SCAN_INTERVAL_S
            changed |= self._scan()
        selected = self.selected
        first_reads = 0
        for name, entry in sorted(self.runs.items(), key=lambda item: (item[1].read, -item[1].mtime)):
            if not entry.read:
                if budget is not None and first_reads and time.monotonic() - started > budget:
                    continue  # left for the next poll
                first_reads += 1
            if name != selected and now < entry.next_poll:
                continue
            entry.next_poll = now + BACKGROUND_POLL_S
            try:
                events = entry.follower.poll()
                if events:
                    changed.add(name)
                    answers += self._answers(name, events)
                if events or now >= entry.next_liveness:
                    entry.next_liveness = now + LIVENESS_INTERVAL_S
                    if self._refresh_status(entry, with_log=name == selected):
                        changed.add(name)
                problem = entry.follower.problem  # the log itself unreadable (a folder, no permission)
            except Exception as exc:  # events.jsonl is a folder, engine.json is garbage, ...: list it, go on
                problem = f"cannot be read: {exc}"
            if problem != entry.problem:
                entry.problem = problem
                changed.add(name)
            if not entry.read:
                entry.read = True
                changed.add(name)
        if not changed and not answers and self._reported:
            return None
        self._reported = True
        for name in changed:
            entry = self.runs.get(name)
            if entry is None or not entry.read:
                self.snapshots.pop(name, None)  # a run is listed once its log has been read
            else:
                self.snapshots[name] = entry.snapshot()
        return RunsUpdate(MappingProxyType(dict(self.snapshots)), frozenset(changed), tuple(answers), not self.behind)

    def _scan(self) -> set[str]:
        found = set()
        for folder in run_folders(self.runs_dir):
            if folder.name not in self.runs:
                paths = RunPaths(folder)
                self.runs[folder.name] = RunEntry(folder.name, paths, RunFollower(folder), mtime=_mtime(paths.events))
                found.add(folder.name)
        for folder in timm_folders(self.runs_dir):  # timm train.py output, read-only: curves from its summary.csv
            if folder.name not in self.runs:
                follower = TimmFollower(folder)
                self.runs[folder.name] = RunEntry(folder.name, follower.paths, follower,  # type: ignore[arg-type]
                                                  mtime=_mtime(folder / "summary.csv"))
                found.add(folder.name)
        gone = {name for name, entry in self.runs.items() if not entry.paths.root.exists()}
        for name in gone:
            del self.runs[name]
        return found | gone

    def _refresh_status(self, entry: RunEntry, with_log: bool) -> bool:
        status = run_status(entry.paths, entry.follower.state)
        exit_info = engine_exit(entry.paths) if status == RunStatus.CRASHED else None
        log = entry.log
        if with_log or status == RunStatus.CRASHED:
            try:
                mtime = entry.paths.log.stat().st_mtime
            except OSError:
                mtime = 0.0
            if mtime != entry.log_mtime:
                entry.log_mtime = mtime
                log = log_tail(entry.paths, self.log_lines)
        changed = (status, exit_info, log) != (entry.status, entry.exit, entry.log)
        if changed:
            entry.status, entry.exit, entry.log = status, exit_info, log
        return changed

    def _answers(self, name: str, events: list[Event]) -> list[Answer]:
        if not self.pending_commands:
            return []
        found = []
        for event in events:
            command_id = event.extra.get("command")
            if isinstance(command_id, str) and command_id in self.pending_commands:
                found.append(Answer(self.pending_commands.pop(command_id), command_id, event))
            elif event.kind == "run_finished":
                for cid, run in list(self.pending_commands.items()):
                    if run == name:  # a stop is answered by the end of the run
                        found.append(Answer(self.pending_commands.pop(cid), cid, event))
        return found

    # ------------------------------------------------------------ hints from the app (plain assignments)

    def select(self, name: str | None) -> None:
        """Follow ``name`` closely from the next poll on (its log too)."""
        self.selected = name
        entry = self.runs.get(name or "")
        if entry is not None:
            entry.next_poll = 0.0
            entry.next_liveness = 0.0
            entry.log_mtime = -1.0

    def expect_answer(self, run: str, command_id: str) -> None:
        self.pending_commands[command_id] = run


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
