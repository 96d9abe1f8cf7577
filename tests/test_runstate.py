"""RunState: the fold of a run's events that every viewer shows; status with liveness."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from engine.contract.launch import run_status
from engine.contract.protocol import PROTOCOL_VERSION, event_from_dict
from engine.contract.runstate import Curve, RunState, load_run
from engine.contract.runstore import RunPaths
from engine.contract.status import RunStatus


def fold(state: RunState, events: list[dict]) -> None:
    """Decode the lines once, as a reader does, and fold them."""
    state.apply([event_from_dict(e) for e in events])


def ev(seq: int, kind: str, **fields) -> dict:
    return {"v": 1, "seq": seq, "time": 1000.0 + seq, "kind": kind, **fields}


def started(seq: int = 1, start_epoch: int = 0) -> dict:
    config = {"train": {"best_metric": "auc", "epochs": 3}, "model": {"name": "resnet10t"}}
    return ev(seq, "run_started", run_id="r", config=config, model="resnet10t", device="cpu, fp32", epochs=3,
              steps_per_epoch=10, num_train=320, num_val=64, start_epoch=start_epoch, world_size=1)


def step(seq: int, epoch: int, epoch_step: int, loss: float = 0.5) -> dict:
    return ev(seq, "step", epoch=epoch, step=epoch * 10 + epoch_step, epoch_step=epoch_step, steps_per_epoch=10,
              loss=loss, lr=1e-3, images_per_sec=50.0)


def validated(seq: int, epoch: int, auc: float, is_best: bool) -> dict:
    return ev(seq, "validated", epoch=epoch, metrics={"auc": auc, "loss": 0.4}, num_images=64, best_metric="auc",
              is_best=is_best)


def test_a_whole_run_folds_into_its_summary() -> None:
    state = RunState()
    events = [started(), step(2, 0, 1, 0.9), step(3, 0, 10, 0.7),
              ev(4, "epoch_ended", epoch=0, train_loss=0.8, duration_s=5.0, images_per_sec=60.0),
              validated(5, 1, 0.7, True), ev(6, "predictions_written", epoch=1, path="predictions/epoch-001.csv",
                                             count=64),
              ev(7, "checkpoint_saved", epoch=1, step=10, path="checkpoints/epoch-001.safetensors", reason="epoch",
                 is_best=True, metric_value=0.7),
              step(8, 1, 5, 0.6), ev(9, "paused", epoch=1, step=15)]
    fold(state, events)
    assert state.status == RunStatus.PAUSED and state.model == "resnet10t" and state.epochs == 3
    assert (state.epoch, state.epoch_step, state.step) == (1, 5, 15)
    assert state.loss.points() == ([1, 10, 15], [0.9, 0.7, 0.6])
    assert state.epoch_losses == {1: 0.8}
    assert state.best_value == 0.7 and state.best_epoch == 1
    assert state.predictions == {1: "predictions/epoch-001.csv"}
    assert state.checkpoints[0].reason == "epoch"
    assert state.last_seq == 9 and state.last_time == 1009.0
    fold(state, [ev(10, "resumed", epoch=1, step=15), step(11, 1, 10), validated(12, 2, 0.65, False),
                 ev(13, "run_finished", status="completed", epochs_completed=3, bad_images=2)])
    assert state.status == "finished" and state.epoch == 3 and state.bad_images == 2
    assert state.best_epoch == 1 and list(state.validations) == [1, 2]


def test_the_same_events_in_any_batching_give_the_same_state() -> None:
    events = [started()] + [step(i + 2, i // 10, i % 10 + 1, 1.0 / (i + 1)) for i in range(25)]
    events.insert(12, ev(100, "epoch_ended", epoch=0, train_loss=0.5, duration_s=1.0, images_per_sec=10.0))
    whole, piecewise = RunState(), RunState()
    fold(whole, events)
    for i in range(0, len(events), 3):
        fold(piecewise, events[i:i + 3])
    assert whole.loss.points() == piecewise.loss.points()
    assert (whole.epoch, whole.epoch_step, whole.step) == (piecewise.epoch, piecewise.epoch_step, piecewise.step)


def test_progress_after_an_epoch_end_is_the_epoch_end() -> None:
    state = RunState()
    fold(state, [started(), step(2, 0, 10), ev(3, "epoch_ended", epoch=0, train_loss=0.5, duration_s=1.0,
                                               images_per_sec=1.0)])
    assert (state.epoch, state.epoch_step) == (1, 0)


def test_resumed_run_revalidates_and_the_newer_result_counts() -> None:
    state = RunState()
    fold(state, [started(), validated(2, 1, 0.6, True), validated(3, 2, 0.8, True),
                 ev(4, "run_finished", status="stopped", epochs_completed=2),
                 started(5, start_epoch=1), validated(6, 2, 0.75, True)])
    assert state.status == RunStatus.RUNNING and list(state.validations) == [1, 2]
    assert state.validations[2].metrics["auc"] == 0.75 and state.best_epoch == 2


def test_curve_stays_bounded_and_keeps_the_mean() -> None:
    curve = Curve(limit=100)
    for i in range(100_000):
        curve.add(i, float(i % 2))  # alternating 0, 1: every merged point averages 0.5
    steps, values = curve.points()
    assert 100 <= len(steps) < 200 + 1
    assert all(v == pytest.approx(0.5) for v in values)
    assert steps == sorted(steps) and steps[0] < 1000 and steps[-1] > 99_000


def test_damaged_and_unknown_events_are_skipped() -> None:
    state = RunState()
    fold(state, [started(), {"kind": "step", "seq": 2, "loss": "nan?", "step": None}, ev(3, "from_the_future", x=1),
                 ev(4, "validated", epoch="three"), step(5, 0, 3)])
    assert state.step == 3 and state.loss.points() == ([3], [0.5])
    assert any("validated" in w for w in state.warnings)


def test_a_newer_protocol_is_noticed() -> None:
    state = RunState()
    fold(state, [{**started(), "v": PROTOCOL_VERSION + 1}])
    assert state.newer_protocol == PROTOCOL_VERSION + 1 and state.status == RunStatus.RUNNING


def write_events(run: Path, events: list[dict]) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def test_status_corrects_a_live_looking_log_by_the_process(tmp_path: Path, request) -> None:
    run = tmp_path / "r"
    write_events(run, [started(), step(2, 0, 1)])
    paths = RunPaths(run)
    stand_in = subprocess.Popen(["sleep", "60"])  # a live process that started before engine.json was written
    request.addfinalizer(lambda: (stand_in.kill(), stand_in.wait()))
    engine = {"pid": stand_in.pid, "host": socket.gethostname(), "started": time.time()}
    (run / "engine.json").write_text(json.dumps(engine))
    assert run_status(paths, load_run(run)) == RunStatus.RUNNING
    dead = 2**22 + 12345  # above the default pid_max: no such process
    (run / "engine.json").write_text(json.dumps({**engine, "pid": dead, "engine_pid": dead}))
    assert run_status(paths, load_run(run)) == RunStatus.CRASHED
    (run / "engine.json").write_text(json.dumps({**engine, "host": "elsewhere"}))
    assert run_status(paths, load_run(run)) == RunStatus.UNRESPONSIVE  # last event long ago, other host: only heartbeats tell
    (run / "engine.json").unlink()
    write_events(run, [])
    assert run_status(paths, load_run(run)) == RunStatus.STARTING  # a folder made a moment ago, engine not up yet


def test_a_pause_shows_the_engines_step_and_no_stale_speed() -> None:
    """Steps are logged every few: "paused at epoch 1, step 10" must not sit beside a bar at 9/10 and 50 img/s."""
    state = RunState()
    fold(state, [started(), step(2, 0, 9), ev(3, "paused", epoch=0, step=10)])
    assert state.status == RunStatus.PAUSED
    assert (state.epoch, state.epoch_step, state.step) == (0, 10, 10)
    assert state.images_per_sec is None
    fold(state, [ev(4, "resumed", epoch=0, step=10), step(5, 1, 1)])
    assert state.status == RunStatus.RUNNING and state.images_per_sec == 50.0


def test_elapsed_is_the_engines_own_time_and_leaves_out_the_time_between_a_stop_and_a_resume() -> None:
    state = RunState()
    fold(state, [started(1), step(2, 0, 5),
                 ev(3, "run_finished", status="stopped", epochs_completed=0, duration_s=42.0)])
    assert state.duration == 42.0  # as the engine's "run stopped ... in 0:42" says
    resumed = started(1000)  # resumed 1000 seconds later
    fold(state, [resumed, ev(1010, "heartbeat")])
    assert state.duration == 42.0 + 10.0
    fold(state, [ev(1020, "run_finished", status="completed", epochs_completed=3, duration_s=20.0)])
    assert state.duration == 62.0
