"""Starting and resuming a run: the one home (engine.contract.runstart) that the CLI and the app share."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from engine.contract import runstart
from engine.contract.config import Config, save_config
from engine.contract.errors import DataError, FfdvError
from engine.contract.runstore import RunPaths, create_run_dir


def config_for(data: Path, runs: Path) -> Config:
    config = Config()
    config.data.root = str(data)
    config.model.name = "resnet10t"
    config.run.runs = str(runs)
    config.run.name = "first"
    return config


def test_a_config_that_cannot_be_written_leaves_no_run_folder(tiny_ffdi: Path, tmp_path: Path, monkeypatch) -> None:
    def full_disk(paths, config) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runstart, "save_config", full_disk)
    with pytest.raises(OSError, match="No space"):
        runstart.create_run(config_for(tiny_ffdi, tmp_path / "runs"))
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_broken_dataset_stops_before_a_run_folder_exists(tmp_path: Path) -> None:
    with pytest.raises(DataError):
        runstart.create_run(config_for(tmp_path / "no-data", tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


def test_a_new_run_gets_its_folder_name_and_config(tiny_ffdi: Path, tmp_path: Path) -> None:
    paths = runstart.create_run(config_for(tiny_ffdi, tmp_path / "elsewhere"), runs_dir=tmp_path / "runs")
    assert paths.root == tmp_path / "runs" / "first" and paths.config.is_file()
    assert 'name = "first"' in paths.config.read_text()


def test_a_live_run_is_not_resumed(tiny_ffdi: Path, tmp_path: Path, monkeypatch, live_pid: int) -> None:
    paths = create_run_dir(tmp_path, "live")
    save_config(paths, config_for(tiny_ffdi, tmp_path))
    (paths.root / "engine.json").write_text(json.dumps({"pid": live_pid, "host": socket.gethostname(),
                                                         "started": time.time()}))
    launched = []
    monkeypatch.setattr(runstart, "launch_run", lambda *a, **k: launched.append(a) or 1)
    with pytest.raises(FfdvError, match="still running"):
        runstart.resume_run(RunPaths(paths.root))
    assert launched == []


def test_resume_keeps_only_the_epochs_and_processes_and_says_when_it_starts_over(tiny_ffdi: Path, tmp_path: Path,
                                                                                monkeypatch) -> None:
    paths = create_run_dir(tmp_path, "stopped")
    save_config(paths, config_for(tiny_ffdi, tmp_path))
    monkeypatch.setattr(runstart, "launch_run", lambda paths, resume, dist: 4242)
    launched = runstart.resume_run(paths, {"train.epochs": 9, "optim.lr": 0.5})
    assert launched.pid == 4242 and launched.config.train.epochs == 9 and launched.config.optim.lr != 0.5
    assert not launched.from_checkpoint and "starts again" in runstart.nothing_to_resume(paths)
