"""The queue runner: starts the next queued run whenever a slot is free.

One slot per GPU (``CUDA_VISIBLE_DEVICES`` set per run; ``slots_per_gpu`` for small models),
or ``slots_per_gpu`` runs at a time on a machine without one. Engines are detached as
``ffdv train --detach`` starts them, so killing the runner leaves them training; a runner
started again counts the live runs as busy slots (adopts them). One runner per runs folder
(``queue-runner.lock``); a run starts only after its ``claim.json`` was created here
(engine/contract/queue.py), so nothing starts twice even if two runners shared a folder.

Torch-free: the app starts it detached (``python -m engine queue run``) and shows whether it lives.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.contract.errors import FfdvError
from engine.contract.protocol import RunError, RunFinished
from engine.contract.queue import claim, is_startable, next_to_start, read_claim, read_json_dict
from engine.contract.runstate import RunFollower
from engine.contract.runstore import EventWriter, RunPaths, atomic_write_json, run_folders
from engine.contract.status import LIVE_STATUSES, RunOutcome, RunStatus

RUNNER_LOCK = "queue-runner.lock"
RUNNER_INFO = "queue-runner.json"
RUNNER_LOG = "queue-runner.log"
POLL_S = 0.2  # how often the runner looks for a free slot: most of the time from one run's end to the next's start
RUNNER_BY = "queue-runner"


def visible_gpus() -> list[str]:
    """The GPUs the runner hands out: ``CUDA_VISIBLE_DEVICES`` when set, else nvidia-smi's list, else none."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip() and gpu.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(line for line in out.splitlines() if line.startswith("GPU "))]


# ---------------------------------------------------------------- is a runner alive


def runner_alive(runs_root: Path) -> dict[str, Any] | None:
    """The live runner's record (pid, host, started) for this runs folder, None when there is none here."""
    from engine.contract.launch import _pid_alive

    info = read_json_dict(Path(runs_root) / RUNNER_INFO)
    if not info or info.get("host") != socket.gethostname():
        return None
    return info if _pid_alive(info.get("pid"), info.get("started")) else None


def start_runner_detached(runs_root: Path, slots: int = 1, until_empty: bool = False) -> int:
    """``python -m engine queue run`` in its own session, output to ``RUNS/queue-runner.log``; returns its pid."""
    runs_root = Path(runs_root)
    runs_root.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "engine", "queue", "run", "--runs", str(runs_root), "--slots", str(slots)]
    if until_empty:
        cmd.append("--until-empty")
    with open(runs_root / RUNNER_LOG, "ab") as log:
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return child.pid


class RunnerLock:
    """One runner per runs folder; the OS drops the lock when the runner dies (even by SIGKILL)."""

    def __init__(self, runs_root: Path):
        self.runs_root = Path(runs_root)
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        self.runs_root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.runs_root / RUNNER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise FfdvError(f"{self.runs_root}: a queue runner already serves this runs folder ({holder}); "
                            "it starts the queued runs. Fix: leave it, or stop it before starting another.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        atomic_write_json(self.runs_root / RUNNER_INFO, {"pid": os.getpid(), "host": socket.gethostname(),
                                                          "started": time.time()})

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# ---------------------------------------------------------------- the runner


def fail_run(paths: RunPaths, message: str) -> None:
    """End a queued run that cannot start, with the reason, as the engine would: every viewer shows it failed."""
    with EventWriter(paths.events) as writer:
        writer.emit(RunError(message=message))
        writer.emit(RunFinished(status=RunOutcome.FAILED, epochs_completed=0, message=message))


def check_startable_config(paths: RunPaths):
    """The run's config and dataset, checked as ``ffdv train`` does before a run starts (DataError, ConfigError)."""
    from engine.contract.config import load_config
    from engine.contract.runstart import check_run_inputs

    config = load_config(paths.config)
    check_run_inputs(config)
    return config


@dataclass
class QueueRunner:
    runs_root: Path
    slots_per_gpu: int = 1
    gpus: list[str] = field(default_factory=list)  # empty: a CPU machine, ``slots_per_gpu`` runs at a time
    say: Callable[[str], None] = print
    followers: dict[str, RunFollower] = field(default_factory=dict)
    statuses: dict[str, RunStatus] = field(default_factory=dict)
    launched: list[str] = field(default_factory=list)

    def statuses_now(self) -> dict[str, RunStatus]:
        """Every run's status, read incrementally (a long log is replayed once, then tailed)."""
        from engine.contract.launch import run_status

        now: dict[str, RunStatus] = {}
        for folder in run_folders(self.runs_root):
            follower = self.followers.get(folder.name)
            if follower is None:
                follower = self.followers[folder.name] = RunFollower(folder)
                follower.replay()
            else:
                follower.poll()
            now[folder.name] = run_status(follower.paths, follower.state)
        return now

    def free_gpus(self, statuses: dict[str, RunStatus]) -> list[str | None]:
        """One entry per free slot: the GPU it stands for (None on a CPU machine)."""
        busy: dict[str | None, int] = {}
        unknown = 0
        for name, status in statuses.items():
            if status not in LIVE_STATUSES:
                continue
            record = read_claim(self.runs_root / name) or {}
            gpu = record.get("gpu")
            if record.get("by") == RUNNER_BY and gpu in (self.gpus or [None]):
                busy[gpu] = busy.get(gpu, 0) + 1
            else:
                unknown += 1  # started by hand (or on a GPU not ours): it takes a slot all the same
        free = [gpu for gpu in (self.gpus or [None]) for _ in range(self.slots_per_gpu - busy.get(gpu, 0))]
        free.sort(key=lambda gpu: -sum(1 for g in free if g == gpu))  # the least busy GPU first
        return free[unknown:]

    def step(self) -> dict[str, RunStatus]:
        """Report what changed, start queued runs on the free slots; returns the statuses seen."""
        statuses = self.statuses_now()
        for name, status in statuses.items():
            before = self.statuses.get(name)
            if before is None and status in LIVE_STATUSES:
                self.say(f"running: {name} (adopted)")
            elif before is not None and before != status and not status.is_live and before.is_live:
                self.say(f"ended: {name} ({status})")
        self.statuses = statuses
        free = self.free_gpus(statuses)
        for name in next_to_start(self.runs_root):
            if not free:
                break
            if self.start(name, free[0]):
                free.pop(0)
                statuses[name] = RunStatus.STARTING
        return statuses

    def start(self, name: str, gpu: str | None) -> bool:
        """Claim the run and launch its engine; a run that cannot start fails alone, with the reason."""
        from engine.contract.launch import launch_run

        paths = RunPaths(self.runs_root / name)
        if not is_startable(paths) or not claim(paths.root, RUNNER_BY, gpu=gpu):
            return False  # another runner, a cancel or a user took it first
        try:
            config = check_startable_config(paths)
            env = {"CUDA_VISIBLE_DEVICES": gpu} if gpu is not None else {}
            pid = launch_run(paths, dist=config.dist, env=env)
        except Exception as exc:  # whatever stops one run must not stop the queue
            fail_run(paths, f"the queue could not start this run: {exc}")
            self.say(f"failed: {name}: {exc}")
            return False  # its slot stays free, the claim is spent: the next run goes on
        self.launched.append(name)
        self.say(f"started: {name}" + (f" on GPU {gpu}" if gpu is not None else "") + f" (pid {pid})")
        return True

    def serve(self, until_empty: bool = False, poll_s: float = POLL_S) -> int:
        lock = RunnerLock(self.runs_root)
        lock.acquire()
        where = f"GPUs {','.join(self.gpus)}" if self.gpus else "CPU"
        self.say(f"queue runner for {self.runs_root}: {where}, {self.slots_per_gpu} slot(s) each")
        try:
            while True:
                statuses = self.step()
                busy = any(status in LIVE_STATUSES for status in statuses.values())
                if until_empty and not busy and not next_to_start(self.runs_root):
                    self.say("queue empty: nothing queued or running")
                    return 0
                time.sleep(poll_s)
        finally:
            lock.release()


def serve_queue(runs_root: Path, slots: int = 1, until_empty: bool = False, gpus: list[str] | None = None) -> int:
    """The runner as ``ffdv queue run`` starts it."""
    if slots < 1:
        raise FfdvError(f"--slots {slots}: give at least 1 run per GPU (or at a time on a CPU machine)")
    runner = QueueRunner(Path(runs_root), slots, visible_gpus() if gpus is None else gpus, say=_stamped)
    return runner.serve(until_empty=until_empty)



def _stamped(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)
