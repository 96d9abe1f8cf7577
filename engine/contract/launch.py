"""Running a run's engine as its own process, and knowing whether it still lives.

Torch-free: the app starts engines through this module. The process tree of a run:

    launcher (ffdv train, ffdv-tui)  --exits or carries on-->
      supervisor  (python -m engine supervise RUN; own session, stdin /dev/null, output to engine.log)
        engine    (python -m engine run RUN; the only process that imports torch)

The launcher's child forks the supervisor off and exits at once, so the supervisor is
nobody's zombie and outlives the terminal that started it. The supervisor waits for
the engine and records how it ended in ``exit.json`` (exit code or signal), which is
how a run killed without a word (SIGKILL, out of memory) is reported as crashed with
its exit status. ``engine.json`` names both pids and the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.contract.config import DistConfig
from engine.contract.errors import FfdvError
from engine.contract.protocol import RunError
from engine.contract.queue import queue_status
from engine.contract.runstate import RunState
from engine.contract.runstore import EventReader, EventWriter, RunPaths, atomic_write_json
from engine.contract.status import RunStatus

SUPERVISED_ENV = "FFDV_SUPERVISED"
# The engine yields the CPU to interactive programs (the app, a shell) when they need it; with the
# CPU to itself it loses nothing. Its loader workers sit lower still (engine/loader.py).
ENGINE_NICENESS = 10
LOG_TAIL_LINES = 20


def lock_path(paths: RunPaths) -> Path:
    return paths.root / "engine.lock"


# ---------------------------------------------------------------- starting


def launch_run(paths: RunPaths, resume: bool = False, dist: DistConfig | None = None,
               env: dict[str, str] | None = None) -> int:
    """Start the run's engine in the background; returns the supervisor's pid once it runs.

    ``env``: variables set for this run only (the queue runner's ``CUDA_VISIBLE_DEVICES``)."""
    dist = dist or DistConfig()
    cmd = [sys.executable, "-m", "engine", "supervise", str(paths.root), "--daemon", *dist_args(dist)]
    if resume:
        cmd.append("--resume")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    paths.exit.unlink(missing_ok=True)
    result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                            start_new_session=True, timeout=60)
    if result.returncode != 0 or not result.stdout.strip().isdigit():
        raise FfdvError(f"could not start the engine for {paths.root}: {result.stderr.strip() or result.stdout.strip()}")
    pid = int(result.stdout.strip())
    # engine.json names the new supervisor before we return: no viewer mistakes a resumed run for the old, dead one
    wait_for(lambda: (read_json(paths.engine) or {}).get("pid") == pid, 10, interval=0.01)
    return pid


def dist_args(dist: DistConfig) -> list[str]:
    return [f"--nproc-per-node={dist.nproc_per_node}", f"--nnodes={dist.nnodes}", f"--node-rank={dist.node_rank}",
            f"--rdzv-endpoint={dist.rdzv_endpoint}"]


def engine_command(paths: RunPaths, resume: bool, dist: DistConfig) -> list[str]:
    """``python -m engine run RUN``, through torchrun (PyTorch's launcher) when the run has several processes."""
    run = ["-m", "engine", "run", str(paths.root)] + (["--resume"] if resume else [])
    if dist.world_size == 1:
        return [sys.executable, *run]
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={dist.nproc_per_node}",
           f"--nnodes={dist.nnodes}"]
    if dist.nnodes == 1:
        cmd.append("--standalone")
    else:
        cmd += [f"--node-rank={dist.node_rank}", "--rdzv-backend=c10d", f"--rdzv-endpoint={dist.rdzv_endpoint}",
                f"--rdzv-id={paths.root.name}"]
    return cmd + run


def _daemonize(paths: RunPaths) -> None:
    """Fork: the parent prints the child's pid and leaves; the child carries on alone, output to engine.log."""
    pid = os.fork()
    if pid > 0:
        print(pid, flush=True)
        os._exit(0)
    os.setsid()
    log = os.open(paths.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)


def supervise(paths: RunPaths, resume: bool, daemon: bool, dist: DistConfig | None = None) -> int:
    """Run the engine as a child, pass stop signals on, record how it ended."""
    dist = dist or DistConfig()
    if daemon:
        _daemonize(paths)
    cmd = engine_command(paths, resume, dist)
    print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} engine starting: {' '.join(cmd)}", flush=True)
    child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env={**os.environ, SUPERVISED_ENV: "1"},
                             preexec_fn=lambda: os.nice(ENGINE_NICENESS))
    started = time.time()
    atomic_write_json(paths.engine, {"pid": os.getpid(), "engine_pid": child.pid, "host": socket.gethostname(),
                                     "started": started, "argv": cmd})

    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    code = child.wait()
    ended = {"returncode": code, "signal": signal.Signals(-code).name if code < 0 else None,
             "engine_pid": child.pid, "started": started, "time": time.time()}
    atomic_write_json(paths.exit, ended)
    how = f"killed by {ended['signal']}" if ended["signal"] else f"exit status {code}"
    print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} engine ended: {how}", flush=True)
    if paths.node == 0:
        report_rank_errors(paths)
    return 0


def report_rank_errors(paths: RunPaths) -> None:
    """Errors other ranks left, written to the log if rank 0 could not (it died first, or without a word)."""
    errors = paths.rank_errors()
    if not errors:
        return
    logged = {(e.get("rank"), e.get("message")) for e in read_events_dicts(paths) if e.get("kind") == "error"}
    with EventWriter(paths.events) as writer:
        for error in errors:
            if (error.get("rank"), error.get("message")) not in logged:
                writer.emit(RunError(message=str(error.get("message", "")), traceback=str(error.get("traceback", "")),
                                     rank=int(error.get("rank", -1))))


def read_events_dicts(paths: RunPaths) -> list[dict[str, Any]]:
    return EventReader(paths.events).poll_dicts()


# ---------------------------------------------------------------- one engine per folder


class RunLock:
    """An exclusive lock on the run folder for the engine's lifetime; the OS drops it when the process dies."""

    def __init__(self, paths: RunPaths):
        self.paths = paths
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock, as before
            return
        fd = os.open(lock_path(self.paths), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise FfdvError(
                f"{self.paths.root}: another engine is writing this run folder ({holder}). "
                "Fix: stop it first (ffdv stop RUN), or start a new run."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# ---------------------------------------------------------------- liveness


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


START_TOLERANCE_S = 2.0  # clock-tick rounding of a process's start time, and a slow fork


def _pid_alive(pid: Any, started: Any = None) -> bool:
    """Whether ``pid`` is a live process that can be the one engine.json names.

    Only positive pids other than 1 and our own count (``os.kill(0 | -1, 0)`` asks about whole process
    groups, so a forged engine.json could make any run look alive). Where /proc tells, a process that
    started after engine.json's ``started`` time is a recycled pid, not the engine that wrote it.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except (OSError, OverflowError):
        return False
    with contextlib.suppress(OSError, ValueError, IndexError):  # a reaped-late zombie or a recycled pid is not our engine
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            return False
        if isinstance(started, (int, float)) and not isinstance(started, bool):
            began = _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")
            if began > started + START_TOLERANCE_S:
                return False
    return True


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise ValueError("no btime in /proc/stat")


def engine_alive(paths: RunPaths) -> bool | None:
    """True or False on the engine's own host; None elsewhere (judge by heartbeats there)."""
    info = read_json(paths.engine)
    if not info:
        return False
    if info.get("host") != socket.gethostname():
        return None
    return any(_pid_alive(info.get(key), info.get("started")) for key in ("pid", "engine_pid"))


def log_tail(paths: RunPaths, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        with open(paths.log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


@dataclass
class Exit:
    """How a dead engine ended, as far as is known."""

    returncode: int | None
    signal: str | None

    def describe(self) -> str:
        if self.signal:
            return f"killed by {self.signal}"
        if self.returncode is not None:
            return f"exit status {self.returncode}"
        return "exit status unknown"


def engine_exit(paths: RunPaths) -> Exit:
    info = read_json(paths.exit) or {}
    return Exit(info.get("returncode"), info.get("signal"))


def stop_engine(paths: RunPaths, sig: int = signal.SIGTERM) -> bool:
    """Signal the engine (SIGTERM asks for the same clean stop as the stop command)."""
    info = read_json(paths.engine) or {}
    if info.get("host") != socket.gethostname():
        return False
    for key in ("engine_pid", "pid"):
        pid = info.get(key)
        # never 0, -1 (process groups, everything), 1, ourselves, or a process that is not an engine
        if _pid_alive(pid, info.get("started")) and is_engine_process(pid):
            os.kill(pid, sig)
            return True
    return False


def is_engine_process(pid: int) -> bool:
    """Whether ``pid``'s command line is an engine's or its supervisor's (``python -m engine run|supervise``, or
    torchrun around it), so that a forged engine.json naming the user's editor or shell gets no signal.
    Where /proc does not tell (macOS), the start-time check in ``_pid_alive`` is all there is."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return False
    named = b"engine" in argv or any(Path(os.fsdecode(a)).name == "ffdv" for a in argv[:2])
    return named and (b"run" in argv or b"supervise" in argv)


def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


# ---------------------------------------------------------------- status


STALE_AFTER_S = 60.0  # three missed heartbeats and more: a live-looking run on another host may be hung


def run_status(paths: RunPaths, state: RunState) -> RunStatus:
    """The status to show: the log's, corrected by whether the engine process still lives (or waits in the queue)."""
    if state.last_seq == 0 and state.status == RunStatus.STARTING:
        waiting = queue_status(paths)
        if waiting is not None:
            return waiting
    if not state.is_live:
        return state.status
    alive = engine_alive(paths)
    if alive is None:  # another host: only the heartbeats tell
        last = state.last_time or 0.0
        return RunStatus.UNRESPONSIVE if time.time() - last > STALE_AFTER_S else state.status
    if alive:
        return state.status
    if state.status == RunStatus.STARTING and not paths.engine.exists():
        try:
            age = time.time() - paths.root.stat().st_mtime
        except OSError:
            age = 0.0
        if age < STALE_AFTER_S:
            return RunStatus.STARTING
    return RunStatus.CRASHED
