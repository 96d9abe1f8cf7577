"""Every run under the runs folder, followed from one background thread; the app reads snapshots.

The watcher thread owns the followers (file offsets, folded RunStates) and calls
``poll`` about ten times a second. The selected run is read every poll; the others
once a second, so a folder of a hundred runs costs a few stat calls. What changed is
returned so the app repaints only that. The app reads the state under ``lock``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.contract.launch import Exit, engine_exit, log_tail, run_status
from engine.contract.runstate import RunFollower, RunState
from engine.contract.runstore import RunPaths
from engine.contract.status import LIVE_STATUSES, RunStatus

BACKGROUND_POLL_S = 1.0
SCAN_INTERVAL_S = 1.0
LIVENESS_INTERVAL_S = 1.0


@dataclass
class RunEntry:
    """One run folder as the app sees it."""

    name: str
    paths: RunPaths
    follower: RunFollower
    status: RunStatus = RunStatus.STARTING
    exit: Exit | None = None
    log: list[str] = field(default_factory=list)
    next_poll: float = 0.0
    next_liveness: float = 0.0
    log_mtime: float = -1.0

    @property
    def state(self) -> RunState:
        return self.follower.state

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES


@dataclass(frozen=True)
class Answer:
    """The engine's event answering a command the app sent (matched by command id)."""

    run: str
    command_id: str
    event: dict[str, Any]


class RunsModel:
    def __init__(self, runs_dir: Path | str, log_lines: int = 12):
        self.runs_dir = Path(runs_dir)
        self.lock = threading.Lock()
        self.runs: dict[str, RunEntry] = {}
        self.selected: str | None = None
        self.log_lines = log_lines
        self._next_scan = 0.0
        self.pending_commands: dict[str, str] = {}  # command id -> run name

    # ------------------------------------------------------------ the watcher thread

    def poll(self, now: float | None = None) -> tuple[set[str], list[Answer]]:
        """Read what is new; returns the names of the runs that changed and the command answers seen."""
        now = time.monotonic() if now is None else now
        changed: set[str] = set()
        answers: list[Answer] = []
        if now >= self._next_scan:
            self._next_scan = now + SCAN_INTERVAL_S
            changed |= self._scan()
        for name, entry in list(self.runs.items()):
            selected = name == self.selected
            if not selected and now < entry.next_poll:
                continue
            entry.next_poll = now + BACKGROUND_POLL_S
            with self.lock:
                events = entry.follower.poll()
            if events:
                changed.add(name)
                answers += self._answers(name, events)
            if events or now >= entry.next_liveness:
                entry.next_liveness = now + LIVENESS_INTERVAL_S
                if self._refresh_status(entry, with_log=selected):
                    changed.add(name)
        return changed, answers

    def _scan(self) -> set[str]:
        if not self.runs_dir.is_dir():
            return set()
        found = set()
        for folder in self.runs_dir.iterdir():
            if folder.name not in self.runs and (folder / "config.toml").is_file():
                entry = RunEntry(folder.name, RunPaths(folder), RunFollower(folder))
                with self.lock:
                    self.runs[folder.name] = entry
                found.add(folder.name)
        gone = {name for name, entry in self.runs.items() if not entry.paths.root.exists()}
        with self.lock:
            for name in gone:
                del self.runs[name]
        return found | gone

    def _refresh_status(self, entry: RunEntry, with_log: bool) -> bool:
        status = run_status(entry.paths, entry.state)
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
            with self.lock:
                entry.status, entry.exit, entry.log = status, exit_info, log
        return changed

    def _answers(self, name: str, events: list[dict[str, Any]]) -> list[Answer]:
        if not self.pending_commands:
            return []
        found = []
        for event in events:
            command_id = event.get("command")
            if command_id in self.pending_commands:
                found.append(Answer(self.pending_commands.pop(command_id), command_id, event))
            elif event.get("kind") == "run_finished":
                for cid, run in list(self.pending_commands.items()):
                    if run == name:  # a stop is answered by the end of the run
                        found.append(Answer(self.pending_commands.pop(cid), cid, event))
        return found

    # ------------------------------------------------------------ the app's side

    def select(self, name: str | None) -> None:
        self.selected = name
        entry = self.runs.get(name or "")
        if entry is not None:
            entry.next_poll = 0.0
            entry.next_liveness = 0.0
            entry.log_mtime = -1.0

    def ordered(self) -> list[RunEntry]:
        """Newest first (by start time, else folder name)."""
        with self.lock:
            entries = list(self.runs.values())
        return sorted(entries, key=lambda e: (e.state.started_at or _mtime(e.paths.root), e.name), reverse=True)

    def live(self) -> list[RunEntry]:
        return [e for e in self.ordered() if e.is_live]

    def expect_answer(self, run: str, command_id: str) -> None:
        self.pending_commands[command_id] = run


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
