"""Several processes through torchrun, on the CPU with gloo: 2 processes against 1.

Tolerance: each process normalises its own half batch (BatchNorm; SyncBatchNorm is GPU-only),
so the metrics of the 2-process run equal the 1-process run's only approximately: the final
validation loss within 0.03 and AUC within 0.1 on this 48-image validation set.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from conftest import FAST_TRAIN
from test_run_control import ffdv, start_detached, wait_for_event
from torch.utils.data import DistributedSampler

from engine.contract.config import load_config
from engine.contract.launch import engine_alive, run_status, wait_for
from engine.contract.runstate import load_run
from engine.contract.runstore import RunPaths, read_events

TWO = ["--nproc-per-node", "2"]


def train(data: Path, runs: Path, name: str, *extra: str):
    return ffdv("train", "--data", str(data), "--runs", str(runs), "--name", name, *FAST_TRAIN, *extra)


def test_two_processes_predict_each_image_once_and_match_one(tiny_ffdi: Path, tmp_path: Path) -> None:
    one = train(tiny_ffdi, tmp_path, "one", "--epochs", "3", "--batch-size", "32")
    two = train(tiny_ffdi, tmp_path, "two", "--epochs", "3", "--batch-size", "16", *TWO)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr + two.stdout
    single, double = load_run(tmp_path / "one"), load_run(tmp_path / "two")
    assert double.world_size == 2 and double.status == "finished" and double.epoch == 3
    assert "2 processes" in two.stdout
    meta = (tmp_path / "two" / "config.toml").read_text()
    assert "effective_batch_size = 32" in meta and "world_size = 2" in meta
    labels = pd.read_csv(tiny_ffdi / "valset_label.txt")["img_name"].tolist()
    for epoch in (1, 2, 3):
        names = pd.read_csv(tmp_path / "two" / "predictions" / f"epoch-{epoch:03d}.csv")["img_name"].tolist()
        assert names == labels  # each image once, none padded in twice, in the label file's order
        assert double.validations[epoch].num_images == len(labels)
    last_one, last_two = single.validations[3].metrics, double.validations[3].metrics
    assert abs(last_one["loss"] - last_two["loss"]) < 0.03
    assert abs(last_one["auc"] - last_two["auc"]) < 0.1


def test_pause_stop_and_resume_with_two_ranks(tiny_ffdi: Path, tmp_path: Path) -> None:
    paths = start_detached(tiny_ffdi, tmp_path, "ddp", "--epochs", "40", *TWO)
    wait_for_event(paths, lambda e: e.kind == "step")
    paused = ffdv("pause", "ddp", "--runs", str(tmp_path))
    assert paused.returncode == 0 and paused.stdout.startswith("paused at"), paused.stderr
    resumed = ffdv("resume", "ddp", "--runs", str(tmp_path))
    assert resumed.returncode == 0 and resumed.stdout.startswith("resumed at"), resumed.stderr
    saved = ffdv("checkpoint", "ddp", "--runs", str(tmp_path))
    assert saved.returncode == 0 and "checkpoint saved" in saved.stdout, saved.stderr
    stopped = ffdv("stop", "ddp", "--runs", str(tmp_path))
    assert stopped.returncode == 0 and "run stopped" in stopped.stdout, stopped.stderr
    assert wait_for(lambda: engine_alive(paths) is False, 60)
    state = load_run(paths.root)
    continued = ffdv("train", "--resume", "ddp", "--runs", str(tmp_path), "--epochs", str(state.epoch + 1))
    assert continued.returncode == 0, continued.stderr + continued.stdout
    events = read_events(paths.events)
    assert events[-1].kind == "run_finished" and events[-1].status == "completed"
    assert [e for e in events if e.kind == "resumed"][-1].reason == "restart"
    assert load_config(paths.config).dist.nproc_per_node == 2


def test_a_failure_on_rank_1_is_reported_with_its_rank(tiny_copy: Path, tmp_path: Path) -> None:
    # The first image that rank 1 reads in epoch 0 (seed 42, as DistributedSampler deals them) is broken.
    names = pd.read_csv(tiny_copy / "trainset_label.txt")["img_name"].tolist()
    sampler = DistributedSampler(range(len(names)), num_replicas=2, rank=1, shuffle=True, seed=42)
    sampler.set_epoch(0)
    victim = names[next(iter(sampler))]
    (tiny_copy / "trainset" / victim).write_bytes(b"")
    result = train(tiny_copy, tmp_path, "broken", "--epochs", "2", "--on-bad-image", "fail", *TWO)
    assert result.returncode == 1
    paths = RunPaths(tmp_path / "broken")
    assert wait_for(lambda: engine_alive(paths) is False, 60)
    errors = [e for e in read_events(paths.events) if e.kind == "error"]
    assert any(e.rank == 1 and victim in e.message for e in errors), [(e.rank, e.message) for e in errors]
    assert run_status(paths, load_run(paths.root)) in ("failed", "crashed")  # torchrun may kill rank 0 first
