"""Run control through the run folder: detach and watch, commands, signals, crashes, exact resume, the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import FAST_TRAIN

from engine.contract.launch import RunLock, engine_alive, engine_exit, read_json, run_status, wait_for
from engine.contract.runstate import load_run
from engine.contract.runstore import RunPaths, read_events

FFDV = [sys.executable, "-m", "engine"]
TIMEOUT = 240


def ffdv(*args: str, timeout: float = TIMEOUT, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*FFDV, *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def start_detached(data: Path, runs: Path, name: str, *extra: str) -> RunPaths:
    result = ffdv("train", "--data", str(data), "--runs", str(runs), "--name", name, *FAST_TRAIN, *extra, "--detach")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(runs / name)
    return RunPaths(runs / name)


def events_of(paths: RunPaths, kind: str) -> list:
    return [e for e in read_events(paths.events) if e.kind == kind]


def wait_for_event(paths: RunPaths, predicate, timeout: float = TIMEOUT):
    found = []

    def check() -> bool:
        found[:] = [e for e in read_events(paths.events) if predicate(e)]
        return bool(found)

    assert wait_for(check, timeout), f"no such event in {paths.events}: {[e.kind for e in read_events(paths.events)]}"
    return found[0]


def test_detached_run_two_watchers_and_the_runs_table(tiny_ffdi: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    paths = start_detached(tiny_ffdi, tmp_path, "bg", "--epochs", "2")
    assert time.monotonic() - started < 60
    info = read_json(paths.engine)
    assert info and info["pid"] != os.getpid() and info["engine_pid"]
    watchers = [subprocess.Popen([*FFDV, "watch", str(paths.root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=TIMEOUT) for w in watchers]
    for watcher, (out, err) in zip(watchers, outputs):
        assert watcher.returncode == 0, err
        assert "run completed" in out
    assert wait_for(lambda: engine_alive(paths) is False, 30)
    assert engine_exit(paths).returncode == 0
    state = load_run(paths.root)
    assert run_status(paths, state) == "finished" and state.epoch == 2 and len(state.validations) == 2
    table = ffdv("runs", "--runs", str(tmp_path))
    assert "bg" in table.stdout and "finished" in table.stdout and "2/2" in table.stdout
    # A watcher that attaches after the end replays the whole run and exits.
    late = ffdv("watch", "bg", "--runs", str(tmp_path))
    assert late.returncode == 0 and "run completed" in late.stdout


def test_pause_checkpoint_resume_stop_are_acknowledged(tiny_ffdi: Path, tmp_path: Path) -> None:
    paths = start_detached(tiny_ffdi, tmp_path, "ctl", "--epochs", "40")
    wait_for_event(paths, lambda e: e.kind == "step")
    result = ffdv("pause", "ctl", "--runs", str(tmp_path))
    assert result.returncode == 0 and result.stdout.startswith("paused at"), result.stderr
    assert run_status(paths, load_run(paths.root)) == "paused"
    steps_before = len(events_of(paths, "step"))
    time.sleep(1.5)
    assert len(events_of(paths, "step")) == steps_before  # really paused
    again = ffdv("pause", "ctl", "--runs", str(tmp_path))
    assert again.returncode == 1 and "already paused" in again.stderr
    saved = ffdv("checkpoint", "ctl", "--runs", str(tmp_path))
    assert saved.returncode == 0 and "checkpoint saved: checkpoints/" in saved.stdout
    assert (paths.root / saved.stdout.split(": ", 1)[1].strip()).is_file()
    resumed = ffdv("resume", "ctl", "--runs", str(tmp_path))
    assert resumed.returncode == 0 and resumed.stdout.startswith("resumed at")
    wait_for(lambda: len(events_of(paths, "step")) > steps_before, 60)
    # A command the engine does not know is answered with an error event and changes nothing.
    with open(paths.commands, "a") as fh:
        fh.write('{"id": "x1", "name": "explode", "args": {}}\nnot json at all\n')
    wait_for_event(paths, lambda e: e.kind == "error" and "explode" in e.message)
    wait_for_event(paths, lambda e: e.kind == "error" and "unreadable" in e.message)
    stopped = ffdv("stop", "ctl", "--runs", str(tmp_path))
    assert stopped.returncode == 0 and "run stopped" in stopped.stdout
    finished = events_of(paths, "run_finished")[-1]
    assert finished.status == "stopped" and "stop command" in finished.message
    assert any(e.reason == "stop" for e in events_of(paths, "checkpoint_saved"))
    assert wait_for(lambda: engine_alive(paths) is False, 30)
    late = ffdv("pause", "ctl", "--runs", str(tmp_path))
    assert late.returncode == 2 and "stopped" in late.stderr and "--resume" in late.stderr


def test_sigterm_stops_cleanly(tiny_ffdi: Path, tmp_path: Path) -> None:
    paths = start_detached(tiny_ffdi, tmp_path, "term", "--epochs", "40")
    wait_for_event(paths, lambda e: e.kind == "step")
    os.kill(read_json(paths.engine)["engine_pid"], signal.SIGTERM)
    finished = wait_for_event(paths, lambda e: e.kind == "run_finished", timeout=60)
    assert finished.status == "stopped" and "SIGTERM" in finished.message
    assert any(e.reason == "stop" for e in events_of(paths, "checkpoint_saved"))
    assert wait_for(lambda: engine_alive(paths) is False, 30)
    assert engine_exit(paths).returncode == 0


def test_sigkill_is_a_crash_and_resume_continues_exactly(tiny_ffdi: Path, tmp_path: Path) -> None:
    options = ["--epochs", "3", "--seed", "7"]
    reference = start_detached(tiny_ffdi, tmp_path, "reference", *options)
    victim = start_detached(tiny_ffdi, tmp_path, "victim", *options)
    # Kill the victim in the middle of its second epoch, after the first epoch's checkpoint.
    wait_for_event(victim, lambda e: e.kind == "step" and e.epoch == 1 and e.epoch_step >= 2)
    os.kill(read_json(victim.engine)["engine_pid"], signal.SIGKILL)
    assert wait_for(lambda: engine_alive(victim) is False, 30)
    state = load_run(victim.root)
    assert run_status(victim, state) == "crashed"
    assert engine_exit(victim).describe() == "killed by SIGKILL"
    watch = ffdv("watch", "victim", "--runs", str(tmp_path))
    assert watch.returncode == 1
    assert "crashed" in watch.stderr and "killed by SIGKILL" in watch.stderr and "engine.log" in watch.stderr
    assert "--resume" in watch.stderr
    runs = ffdv("runs", "--runs", str(tmp_path))
    assert "crashed" in runs.stdout
    with open(victim.events, "ab") as fh:
        fh.write(b'{"v":1,"seq":99999,"kind":"st')  # as if the kill had cut a line in half
    resumed = ffdv("train", "--resume", "victim", "--runs", str(tmp_path))
    assert resumed.returncode == 0, resumed.stderr
    events = read_events(victim.events)
    assert [e for e in events if e.kind == "resumed"][-1].checkpoint == "epoch-001"
    assert events[-1].kind == "run_finished" and events[-1].status == "completed"
    wait_for_event(reference, lambda e: e.kind == "run_finished")
    expected = {e.epoch: e.metrics for e in events_of(reference, "validated")}
    got = {e.epoch: e.metrics for e in events if e.kind == "validated"}
    for epoch in (2, 3):
        assert got[epoch] == expected[epoch], epoch


def test_two_engines_never_share_a_run_folder(tiny_ffdi: Path, tmp_path: Path) -> None:
    paths = start_detached(tiny_ffdi, tmp_path, "busy", "--epochs", "1")
    wait_for(lambda: engine_alive(paths) is False, TIMEOUT)
    lock = RunLock(paths)
    lock.acquire()
    try:
        second = ffdv("run", str(paths.root), "--resume")
        assert second.returncode == 2
        assert f"pid {os.getpid()}" in second.stderr and "another engine" in second.stderr
    finally:
        lock.release()
