"""The queue without training: queued runs, the order record, the claim, the runner's choices (launch stubbed)."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import threading
from pathlib import Path

import pytest
from conftest import write_ffdi

from engine.cli import main
from engine.contract import queue
from engine.contract.errors import FfdvError
from engine.contract.launch import run_status
from engine.contract.queue_runner import QueueRunner, RunnerLock
from engine.contract.runstate import load_run
from engine.contract.runstore import RunPaths, atomic_write_json
from engine.contract.status import RunStatus


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ffdi(tmp_path_factory.mktemp("qdata") / "data", {"train": 8, "val": 4}, size=32)


def queue_runs(runs: Path, data: Path, *names: str) -> None:
    for name in names:
        assert main(["train", "--data", str(data), "--runs", str(runs), "--model", "test_resnet", "--img-size", "32",
                     "--epochs", "1", "--workers", "0", "--name", name, "--queue"]) == 0


def status(runs: Path, name: str) -> RunStatus:
    paths = RunPaths(runs / name)
    return run_status(paths, load_run(paths.root))


def test_a_queued_run_is_a_run_folder_every_viewer_lists_as_queued(small_data: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    queue_runs(runs, small_data, "a", "b")
    assert (runs / "a" / "config.toml").is_file() and not (runs / "a" / "engine.json").exists()
    assert status(runs, "a") == RunStatus.QUEUED and not RunStatus.QUEUED.is_live
    assert queue.next_to_start(runs) == ["a", "b"]
    capsys.readouterr()
    assert main(["runs", "--runs", str(runs)]) == 0
    assert capsys.readouterr().out.count("queued") == 2
    assert main(["queue", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert out.index(" a ") < out.index(" b ") and "queue runner: none" in out


def test_hold_release_move_and_cancel(small_data: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    queue_runs(runs, small_data, "a", "b", "c")
    assert main(["queue", "--runs", str(runs), "move", "c", "1"]) == 0
    assert queue.next_to_start(runs) == ["c", "a", "b"]
    assert main(["queue", "hold", "a", "--runs", str(runs)]) == 0
    assert queue.next_to_start(runs) == ["c", "b"] and queue.queued_in_order(runs) == ["c", "a", "b"]
    assert main(["queue", "release", "a", "--runs", str(runs)]) == 0
    assert queue.next_to_start(runs) == ["c", "a", "b"]
    assert main(["queue", "cancel", "b", "--runs", str(runs)]) == 0
    assert queue.next_to_start(runs) == ["c", "a"] and status(runs, "b") == RunStatus.CANCELLED
    capsys.readouterr()
    assert main(["queue", "hold", "b", "--runs", str(runs)]) == 2
    assert "not waiting in the queue" in capsys.readouterr().err
    assert main(["queue", "move", "../etc", "1", "--runs", str(runs)]) == 2


def test_the_claim_goes_to_exactly_one_of_many_processes(tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        won = pool.starmap(queue.claim, [(root, f"runner-{i}") for i in range(16)])
    assert won.count(True) == 1


def test_a_tampered_order_record_or_forged_status_never_starts_a_run_twice(small_data: Path, tmp_path: Path,
                                                                           monkeypatch, live_pid: int) -> None:
    runs = tmp_path / "runs"
    queue_runs(runs, small_data, "a", "b")
    launched = stub_launch(monkeypatch, live_pid)
    runner = QueueRunner(runs, slots_per_gpu=1, say=lambda _text: None)
    runner.step()
    assert launched == ["a"]
    (runs / "a" / "engine.json").unlink()  # a forged state: the started run looks never started
    (runs / "a" / "events.jsonl").unlink(missing_ok=True)
    (runs / "queue.json").write_text(json.dumps({"order": ["a", "a", "../x", 7], "held": "b"}))
    assert queue.read_order(runs).order == ["a"]
    (runs / "queue.json").write_text("{not json")
    assert queue.read_order(runs).problem and queue.next_to_start(runs) == ["b"]
    for _ in range(3):
        QueueRunner(runs, slots_per_gpu=2, say=lambda _text: None).step()
    assert launched == ["a", "b"]


def test_two_runners_at_once_start_each_run_once(small_data: Path, tmp_path: Path, monkeypatch, live_pid: int) -> None:
    runs = tmp_path / "runs"
    queue_runs(runs, small_data, *"abcdef")
    launched = stub_launch(monkeypatch, live_pid)
    runners = [QueueRunner(runs, slots_per_gpu=6, say=lambda _text: None) for _ in range(4)]  # locks left out
    threads = [threading.Thread(target=runner.step) for runner in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(launched) == list("abcdef")


def test_one_runner_per_runs_folder(tmp_path: Path) -> None:
    first = RunnerLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(FfdvError, match="already serves"):
            RunnerLock(tmp_path).acquire()
    finally:
        first.release()
    RunnerLock(tmp_path).acquire()


def test_a_queued_run_whose_dataset_disappeared_fails_alone_with_the_reason(small_data: Path, tmp_path: Path,
                                                                             monkeypatch, live_pid: int) -> None:
    runs = tmp_path / "runs"
    doomed = Path(shutil.copytree(small_data, tmp_path / "doomed"))
    queue_runs(runs, doomed, "a")
    queue_runs(runs, small_data, "b")
    shutil.rmtree(doomed)
    launched = stub_launch(monkeypatch, live_pid)
    QueueRunner(runs, slots_per_gpu=1, say=lambda _text: None).step()
    assert launched == ["b"]
    assert status(runs, "a") == RunStatus.FAILED
    assert str(doomed) in load_run(runs / "a").errors[-1].message


def test_slots_per_gpu_and_cuda_visible_devices(small_data: Path, tmp_path: Path, monkeypatch, live_pid: int) -> None:
    runs = tmp_path / "runs"
    queue_runs(runs, small_data, *"abcde")
    envs: list[str] = []
    stub_launch(monkeypatch, live_pid, envs)
    QueueRunner(runs, slots_per_gpu=2, gpus=["0", "3"], say=lambda _text: None).step()
    assert sorted(envs) == ["0", "0", "3", "3"] and status(runs, "e") == RunStatus.QUEUED


def stub_launch(monkeypatch, live_pid: int, envs: list[str] | None = None) -> list[str]:
    """launch_run that writes engine.json for a live stand-in process instead of starting an engine."""
    import socket
    import time

    launched: list[str] = []

    def fake(paths: RunPaths, resume: bool = False, dist=None, env=None) -> int:
        launched.append(paths.root.name)
        if envs is not None:
            envs.append((env or {}).get("CUDA_VISIBLE_DEVICES", ""))
        atomic_write_json(paths.engine, {"pid": live_pid, "host": socket.gethostname(), "started": time.time()})
        return live_pid

    monkeypatch.setattr("engine.contract.launch.launch_run", fake)
    return launched


def test_resuming_a_queued_run_starts_it_now_and_takes_it_off_the_queue(small_data: Path, tmp_path: Path,
                                                                         monkeypatch) -> None:
    from engine.contract.runstart import resume_run

    runs = tmp_path / "runs"
    queue_runs(runs, small_data, "a", "b")
    launched: list[str] = []

    def fake(paths: RunPaths, resume: bool = False, dist=None, env=None) -> int:
        launched.append(paths.root.name)
        return 0

    monkeypatch.setattr("engine.contract.runstart.launch_run", fake)
    resume_run(RunPaths(runs / "a"))
    assert launched == ["a"] and queue.read_claim(runs / "a")["by"] == "ffdv train --resume"
    assert queue.next_to_start(runs) == ["b"]
    queue.cancel(runs, "b")
    with pytest.raises(FfdvError, match="cancelled from the queue"):
        resume_run(RunPaths(runs / "b"))
    assert launched == ["a"]
