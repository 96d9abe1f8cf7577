"""The queue runner with real engines: a tiny model, a few images, one epoch at 32 px."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, write_ffdi

from engine.cli import main
from engine.contract.launch import run_status, wait_for
from engine.contract.runstate import load_run
from engine.contract.runstore import RunPaths
from engine.contract.status import RunStatus

pytestmark = pytest.mark.slow
RUN_TIMEOUT_S = 600  # generous: the machine may be busy; nothing here waits on a clock otherwise


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ffdi(tmp_path_factory.mktemp("qdata") / "data", {"train": 8, "val": 4}, size=32)


def queue_run(runs: Path, data: Path, name: str, model: str = "test_resnet") -> None:
    assert main(["train", "--data", str(data), "--runs", str(runs), "--model", "test_resnet", "--img-size", "32",
                 "--epochs", "1", "--batch-size", "4", "--workers", "0", "--name", name, "--queue"]) == 0
    if model != "test_resnet":  # a run that fails on purpose: its engine cannot build this model
        config = runs / name / "config.toml"
        config.write_text(config.read_text().replace('name = "test_resnet"', f'name = "{model}"'))


def runner(runs: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen([sys.executable, "-m", "engine", "queue", "run", "--runs", str(runs), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def starts(runs: Path, name: str) -> int:
    """How many times an engine was started for the run: its log's start lines, its run_started events."""
    paths = RunPaths(runs / name)
    log = paths.log.read_text() if paths.log.exists() else ""
    started = sum(1 for line in paths.events.read_text().splitlines() if '"run_started"' in line)
    assert log.count("engine starting") == started or name.startswith("broken")
    return log.count("engine starting")


def status(runs: Path, name: str) -> RunStatus:
    return run_status(RunPaths(runs / name), load_run(runs / name))


def finished_at(runs: Path, name: str) -> float:
    events = [json.loads(line) for line in (runs / name / "events.jsonl").read_text().splitlines()]
    return next(e["time"] for e in events if e["kind"] == "run_finished")


def engine_started_at(runs: Path, name: str) -> float:
    return json.loads((runs / name / "engine.json").read_text())["started"]


def test_three_queued_runs_finish_one_after_another_and_a_failing_one_does_not_stop_them(
        small_data: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for name, model in (("first", "test_resnet"), ("broken", "no_such_model_anywhere"), ("second", "test_resnet"),
                        ("third", "test_resnet")):
        queue_run(runs, small_data, name, model)
    proc = runner(runs, "--until-empty")
    out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, out
    assert [status(runs, n) for n in ("first", "broken", "second", "third")] == [
        RunStatus.FINISHED, RunStatus.FAILED, RunStatus.FINISHED, RunStatus.FINISHED]
    assert "no_such_model_anywhere" in load_run(runs / "broken").errors[-1].message
    assert [starts(runs, n) for n in ("first", "second", "third")] == [1, 1, 1]
    order = ["first", "broken", "second", "third"]
    for before, after in itertools.pairwise(order):  # one at a time on a CPU machine, in the queue's order
        assert engine_started_at(runs, after) >= finished_at(runs, before)
    assert "queue empty" in out


def test_a_killed_runner_restarted_beside_another_starts_nothing_twice(small_data: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for name in ("one", "two"):
        queue_run(runs, small_data, name)
    first = runner(runs)
    assert wait_for(lambda: (runs / "one" / "engine.json").exists(), RUN_TIMEOUT_S)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert status(runs, "two") == RunStatus.QUEUED and status(runs, "one").is_live  # training goes on
    again, rival = runner(runs, "--until-empty"), runner(runs, "--until-empty")
    results = [proc.communicate(timeout=RUN_TIMEOUT_S) for proc in (again, rival)]
    codes = sorted(proc.returncode for proc in (again, rival))
    assert codes == [0, 2], results  # the second runner on the folder is refused, with the reason
    assert any("already serves" in out for out, _ in results)
    assert not any("started: one" in out for out, _ in results)  # the live run is adopted, not started again
    assert [status(runs, n) for n in ("one", "two")] == [RunStatus.FINISHED, RunStatus.FINISHED]
    assert [starts(runs, n) for n in ("one", "two")] == [1, 1]
