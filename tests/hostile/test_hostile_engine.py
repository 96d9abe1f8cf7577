"""Fault injection for the engine (issue 9): kills in every window of a checkpoint write, broken and
hostile inputs, full and read-only disks. Each case failed before its fix."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

from engine.checkpoint_store import KILL_ENV, CheckpointManager, newest_resumable, read_index
from engine.cli import main
from engine.contract.config import load_config, resolve, save_config
from engine.contract.errors import ConfigError, DataError, FfdvError
from engine.contract.launch import engine_alive, stop_engine
from engine.contract.runstore import RunPaths, create_run_dir, read_events
from engine.contract.sidecar import Sidecar
from engine.data.dataset import read_label_file
from engine.data.images import BadImage, open_rgb

PHASES = ["weights.tmp", "weights", "sidecar.tmp", "sidecar", "state.tmp", "state", "links", "index.tmp", "index",
          "prune"]


def weights(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((4, 4), value)}


def save(folder: Path, epoch: int, metric: float | None) -> None:
    manager = CheckpointManager(folder, "auc", True, keep_top_k=1)
    manager.save(epoch=epoch, step=epoch * 10, weights=weights(epoch), sidecar=Sidecar(model="toy"),
                 state={"epoch": epoch}, metric_value=metric, reason="epoch")


def save_killed_at(folder: Path, epoch: int, metric: float | None, phase: str) -> None:
    """Save in a forked child that SIGKILLs itself at ``phase`` (the engine's own fault-injection hook)."""
    pid = os.fork()
    if pid == 0:  # the child: dies inside save, or exits 0 if the phase was never reached
        os.environ[KILL_ENV] = f"epoch.{phase}"
        try:
            save(folder, epoch, metric)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"{phase} was never reached"


# ---------------------------------------------------------------- 4. crash-safe checkpoint writes


def test_resume_finds_the_state_when_the_index_lags_behind_the_files(tmp_path: Path) -> None:
    """The issue's window: new state written, old one pruned, index not yet written: the index names deleted files."""
    save(tmp_path, 1, 0.5)
    stale_index = (tmp_path / "index.json").read_text()
    save(tmp_path, 2, 0.7)
    (tmp_path / "index.json").write_text(stale_index)  # what a kill between prune and index write left
    (tmp_path / "epoch-001.state.pt").unlink(missing_ok=True)
    found = newest_resumable(tmp_path)
    assert found is not None and found[0].name == "epoch-002.state.pt"
    notes = CheckpointManager(tmp_path, "auc", True, 1).recover()
    assert any("rebuilt" in n for n in notes)
    assert [r.name for r in read_index(tmp_path)] == ["epoch-002"]


@pytest.mark.parametrize("phase", PHASES)
def test_a_kill_in_any_window_of_a_checkpoint_write_leaves_a_resumable_run(tmp_path: Path, phase: str) -> None:
    save(tmp_path, 1, 0.5)
    save_killed_at(tmp_path, 2, 0.7, phase)
    manager = CheckpointManager(tmp_path, "auc", True, keep_top_k=1)
    notes = manager.recover()
    assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name], notes
    state, record = newest_resumable(tmp_path)
    assert record.epoch in (1, 2) and torch.load(state, weights_only=True)["epoch"] == record.epoch
    listed = {r.name for r in read_index(tmp_path)}
    on_disk = {p.name.removesuffix(".json") for p in tmp_path.glob("epoch-*.json")}
    assert listed == on_disk and record.name in listed
    for alias in ("best", "last"):  # the links point at files that exist
        assert (tmp_path / f"{alias}.safetensors").resolve().is_file()
    # the next save carries on normally
    manager.save(epoch=3, step=30, weights=weights(3), sidecar=Sidecar(model="toy"), state={"epoch": 3},
                 metric_value=0.9, reason="epoch")
    assert newest_resumable(tmp_path)[1].epoch == 3 and [p.name for p in tmp_path.glob("*.state.pt")] == [
        "epoch-003.state.pt"]


def test_leftover_temporaries_are_removed_at_the_next_start_but_not_a_live_writers(tmp_path: Path) -> None:
    save(tmp_path, 1, 0.5)
    dead = tmp_path / ".epoch-002.state.pt.tmp-99999999-0123abcd"
    dead.write_bytes(b"\0" * 1000)
    live = tmp_path / f".epoch-002.json.tmp-{os.getppid()}-0123abcd"  # a process that exists
    live.write_text("{")
    notes = CheckpointManager(tmp_path, "auc", True, 1).recover()
    assert not dead.exists() and live.exists() and any("unfinished" in n for n in notes)


# ---------------------------------------------------------------- 8. liveness: forged engine.json


def forge_engine_json(run: Path, pid, started: float | None = None, engine_pid=None) -> RunPaths:
    run.mkdir(parents=True, exist_ok=True)
    info = {"pid": pid, "host": socket.gethostname(), "started": time.time() if started is None else started}
    if engine_pid is not None:
        info["engine_pid"] = engine_pid
    (run / "engine.json").write_text(json.dumps(info))
    return RunPaths(run)


@pytest.mark.parametrize("pid", [0, -1, 1, "self", True, "12", None, 2**40])
def test_a_forged_pid_is_never_alive_and_never_signalled(tmp_path: Path, monkeypatch, pid) -> None:
    pid = os.getpid() if pid == "self" else pid
    paths = forge_engine_json(tmp_path / "r", pid, engine_pid=pid)
    sent = []
    monkeypatch.setattr(os, "kill", lambda p, s: sent.append((p, s)) if s != 0 else os_kill(p, s))
    assert engine_alive(paths) is False
    assert stop_engine(paths) is False and not [s for s in sent if s[1] != 0]


os_kill = os.kill


def test_a_recycled_pid_that_started_after_engine_json_is_not_the_engine(tmp_path: Path) -> None:
    written = time.time() - 60  # engine.json from a minute ago; the process below started just now
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert engine_alive(forge_engine_json(tmp_path / "old", child.pid, started=written)) is False
        assert engine_alive(forge_engine_json(tmp_path / "new", child.pid)) is True
    finally:
        child.kill()
        child.wait()


def test_a_forged_engine_json_naming_a_live_process_that_is_no_engine_gets_no_signal(tmp_path: Path,
                                                                                     live_pid: int) -> None:
    """A live process that started before engine.json (the user's shell, `make test`) passes the pid and start-time
    checks; only its command line tells that it is not an engine. Stopping the run must not signal it."""
    paths = forge_engine_json(tmp_path / "r", live_pid, engine_pid=os.getppid())
    assert stop_engine(paths) is False
    assert Path(f"/proc/{live_pid}").exists() and Path(f"/proc/{os.getppid()}").exists()


def test_an_engine_process_is_told_from_a_stand_in_by_its_command_line(tmp_path: Path) -> None:
    """Popen returns once the child's close-on-exec pipe closes, which the kernel does before it lays out the new
    program's arguments: /proc/PID/cmdline can read empty for a moment on a busy machine, so the test waits for it."""
    from engine.contract.launch import is_engine_process, wait_for

    engine_like = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", "engine", "run", "x"])
    try:
        assert wait_for(lambda: Path(f"/proc/{engine_like.pid}/cmdline").read_bytes() != b"", timeout=30)
        assert is_engine_process(engine_like.pid) and not is_engine_process(os.getppid())
    finally:
        engine_like.kill()
        engine_like.wait()


# ---------------------------------------------------------------- 8. a 20000 x 20000 PNG


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims width x height (a decompression bomb needs no more to cost gigabytes)."""
    Image.new("RGB", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4: ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17: ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr: ihdr + 17])))
    path.write_bytes(bytes(data))
    return path


def test_a_huge_png_is_refused_with_the_reason_before_decoding(tmp_path: Path) -> None:
    path = png_claiming(tmp_path / "huge.png", 20000, 20000)
    started = time.monotonic()
    with pytest.raises(BadImage, match=r"20000x20000 pixels \(400 Mpx\) is above the limit of 100 Mpx.*max_image_mpix"):
        open_rgb(path, 64)
    assert time.monotonic() - started < 5  # not a 2.8 GB decode (measured 17 s before)


def test_the_pixel_limit_is_configurable_and_jpegs_are_reduced_first(tmp_path: Path) -> None:
    Image.new("RGB", (800, 800), (10, 20, 30)).save(tmp_path / "a.jpg")
    Image.new("RGB", (800, 800), (10, 20, 30)).save(tmp_path / "a.png")
    assert open_rgb(tmp_path / "a.jpg", 128, max_pixels=200_000).size == (200, 200)  # draft: decoded at 1/4
    with pytest.raises(BadImage, match="above the limit"):
        open_rgb(tmp_path / "a.png", 128, max_pixels=200_000)
    assert open_rgb(tmp_path / "a.png", 128, max_pixels=0).size == (800, 800)
    with pytest.raises(ConfigError, match="max_image_mpix"):
        load_config(None, {"data.max_image_mpix": -1})


# ---------------------------------------------------------------- 0. every label problem in one pass


def test_every_kind_of_label_problem_is_reported_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "trainset"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (4, 4)).save(folder / name)
    many_missing = "".join(f"gone{i}.png,0\n" for i in range(25))
    (tmp_path / "trainset_label.txt").write_text(
        "img_name,target\na.png,7\nb.png,1\nb.png,0\n../x.png,1\n\"bad\x1b]0;T\x07.png\",1\nc.png,0\n" + many_missing)
    with pytest.raises(DataError) as caught:
        read_label_file(tmp_path / "trainset_label.txt", folder)
    text = str(caught.value)
    for words in ("targets other than 0 or 1", "line 2: target '7'", "duplicate image names", "line 4:",
                  "names that leave the split folder", "line 5:", "control characters in img_name", "line 6:",
                  "images listed but not found", "line 8: 'gone0.png'", "and 5 more (25 in total)"):
        assert words in text, words
    assert "\x1b" not in text and "\x07" not in text  # the name is shown escaped, never raw
    assert "'../x.png' is not in" not in text  # a name already reported is not also "missing"


# ---------------------------------------------------------------- 6. made-up numbers, unchecked sidecars


@pytest.fixture
def tiny_split(tmp_path: Path) -> Path:
    """valset/ with 6 labelled images (a dataset root, as evaluate and predict take it)."""
    from conftest import write_ffdi

    return write_ffdi(tmp_path / "data", {"train": 4, "val": 6, "test": 4}, size=32)


def tiny_weights(folder: Path, nan: bool = False, **sidecar) -> Path:
    model = timm.create_model("test_resnet", num_classes=2)
    state = {k: (torch.full_like(v, float("nan")) if nan and v.is_floating_point() else v).contiguous()
             for k, v in model.state_dict().items()}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "epoch-001.safetensors"
    save_file(state, str(path))
    (folder / "epoch-001.json").write_text(json.dumps({"model": "test_resnet", "img_size": 32, **sidecar}))
    return path


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_non_finite_scores_are_an_error_naming_the_checkpoint(tmp_path: Path, tiny_split: Path, capsys, command) -> None:
    weights = tiny_weights(tmp_path / "ckpt", nan=True)
    out = tmp_path / "out" / ("e.json" if command == "evaluate" else "s.csv")
    code = main([command, "--checkpoint", str(weights), "--data", str(tiny_split), "--split", "val", "--out", str(out),
                 "--device", "cpu", "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 2 and str(weights) in err and "not finite" in err and "Traceback" not in err
    assert not out.exists() and not out.with_suffix(".csv").exists()


@pytest.mark.parametrize("field,value", [("img_size", 5000), ("img_size", "big"), ("mean", "x"), ("eval_crop", "x"),
                                         ("std", [0, 0, 0])])
def test_a_sidecar_field_out_of_the_configs_rules_is_refused(tmp_path: Path, tiny_split: Path, capsys, field,
                                                             value) -> None:
    weights = tiny_weights(tmp_path / "ckpt", **{field: value})
    code = main(["evaluate", "--checkpoint", str(weights), "--data", str(tiny_split), "--split", "val",
                 "--out", str(tmp_path / "e.json"), "--device", "cpu", "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 2 and f"{field} is " in err and "epoch-001.json" in err and "Traceback" not in err


def test_check_submission_reports_nan_instead_of_crashing(tmp_path: Path, tiny_split: Path) -> None:
    from engine.contract.submission import check_submission
    from engine.data.dataset import resolve_split

    split = resolve_split(tiny_split, "test")
    path = tmp_path / "s.csv"
    path.write_text("img_name,y_pred\n" + "".join(f"{n},nan\n" for n in split.names))
    with pytest.raises(FfdvError, match="outside"):
        check_submission(path, split.names)


# ---------------------------------------------------------------- 7. files in the way, full and read-only disks


def test_runs_pointing_at_a_file_is_a_message_and_exit_2(tmp_path: Path, tiny_split: Path, capsys) -> None:
    runs = tmp_path / "runs"
    runs.write_text("not a folder")
    code = main(["train", "--data", str(tiny_split), "--runs", str(runs), "--model", "test_resnet", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and f"{runs}: --runs names a file" in err and "Fix:" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_out_pointing_at_a_folder_is_refused_before_any_work(tmp_path: Path, tiny_split: Path, capsys, command) -> None:
    weights = tiny_weights(tmp_path / "ckpt")
    out = tmp_path / "outdir"
    out.mkdir()
    code = main([command, "--checkpoint", str(weights), "--data", str(tiny_split), "--split", "val", "--out", str(out),
                 "--device", "cpu", "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "names a folder" in err and "Fix:" in err
    assert not (tmp_path / "outdir.csv").exists() and not list(out.iterdir())


def disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_full_or_read_only_disk_leaves_no_run_folder_and_says_so(tmp_path: Path, tiny_split: Path, capsys,
                                                                  monkeypatch, error) -> None:
    def refuse(self, data):
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(Path, "write_bytes", refuse)  # config.toml is the first file of a run folder
    runs = tmp_path / "runs"
    code = main(["train", "--data", str(tiny_split), "--runs", str(runs), "--model", "test_resnet", "--epochs", "1",
                 "--name", "full"])
    err = capsys.readouterr().err
    assert code == 2 and "config.toml" in err and "cannot write here" in err and "Fix:" in err
    assert "Traceback" not in err and not (runs / "full").exists()


def test_torch_save_on_a_full_disk_is_reported_as_a_full_disk(tmp_path: Path, monkeypatch) -> None:
    """torch's zip writer says only 'RuntimeError: ... unexpected pos' when the disk fills."""
    from collections import namedtuple

    import engine.contract.runstore as runstore
    from engine.contract.errors import storage_error

    def truncated(state, path):
        Path(path).write_bytes(b"PK")
        raise RuntimeError("[enforce fail at inline_container.cc:783] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed. unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", truncated)
    monkeypatch.setattr(runstore.shutil, "disk_usage", lambda _p: namedtuple("u", "total used free")(10, 10, 0))
    manager = CheckpointManager(tmp_path, "auc", True, 1)
    with pytest.raises(OSError) as caught:
        manager.save(epoch=1, step=10, weights=weights(1), sidecar=Sidecar(model="toy"), state={"epoch": 1},
                     metric_value=0.5, reason="epoch")
    message = str(storage_error(caught.value))
    assert "epoch-001.state.pt" in message and "disk that holds it is full" in message
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_evaluate_on_a_full_disk_leaves_neither_file(tmp_path: Path, tiny_split: Path, capsys, monkeypatch) -> None:
    import engine.predict as predict

    weights = tiny_weights(tmp_path / "ckpt")
    monkeypatch.setattr(predict, "atomic_write_json", disk_full)
    out = tmp_path / "e.json"
    code = main(["evaluate", "--checkpoint", str(weights), "--data", str(tiny_split), "--split", "val", "--out", str(out),
                 "--device", "cpu", "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "full" in err and not out.exists() and not out.with_suffix(".csv").exists()


# ---------------------------------------------------------------- 4 + 5. the kill loop, resume, recovery checkpoints


def engine_run(root: Path, resume: bool, kill_at: str = "") -> subprocess.CompletedProcess:
    """``python -m engine run RUN``: the engine process itself, killed by its own hook at ``kill_at``."""
    env = {**os.environ, KILL_ENV: kill_at} if kill_at else {k: v for k, v in os.environ.items() if k != KILL_ENV}
    cmd = [sys.executable, "-m", "engine", "run", str(root), *(["--resume"] if resume else [])]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def new_run(tmp_path: Path, data: Path, name: str, **overrides) -> Path:
    values = {"data.root": str(data), "data.img_size": 64, "data.workers": 0, "data.augment": "light",
              "model.name": "test_resnet", "train.batch_size": 8, "train.epochs": 6, "run.runs": str(tmp_path),
              "optim.lr": 0.002, "train.recovery_every_min": 0.0, **overrides}
    config = resolve(load_config(overrides=values))
    paths = create_run_dir(tmp_path, name)
    save_config(paths, config)
    return paths.root


def validated(root: Path) -> dict[int, dict]:
    return {e.epoch: e.metrics for e in read_events(root / "events.jsonl") if e.kind == "validated"}


@pytest.fixture(scope="module")
def kill_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import write_ffdi

    return write_ffdi(tmp_path_factory.mktemp("killdata") / "data", {"train": 40, "val": 16, "test": 4}, size=64)


@pytest.fixture(scope="module")
def uninterrupted(kill_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict]:
    root = new_run(tmp_path_factory.mktemp("straight"), kill_data, "straight")
    done = engine_run(root, resume=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return validated(root)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # eleven engine processes: about 2 minutes on an idle 2-core machine, far more on a busy one
def test_kill_loop_at_every_phase_of_checkpoint_writing_ends_as_an_uninterrupted_run(
        tmp_path: Path, kill_data: Path, uninterrupted: dict[int, dict]) -> None:
    """SIGKILL the engine in each window of a checkpoint write (a .tmp-* file there, before and after the index),
    resume each time: the run ends with the metrics of a run never killed. The first kills come before any
    checkpoint exists, so `--resume` also has to start such a run over in its own folder; each kill from "state" on
    leaves that epoch resumable, hence six epochs."""
    root = new_run(tmp_path, kill_data, "killed")
    for attempt, phase in enumerate(PHASES):
        killed = engine_run(root, resume=attempt > 0, kill_at=f"epoch.{phase}:1")
        assert killed.returncode == -signal.SIGKILL, (phase, killed.stdout[-2000:], killed.stderr[-2000:])
    done = engine_run(root, resume=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = read_events(root / "events.jsonl")
    assert any(e.kind == "warning" and e.code == "resume_from_start" for e in events)
    assert any(e.kind == "warning" and "unfinished file" in e.message for e in events)
    assert not [p.name for p in (root / "checkpoints").iterdir() if ".tmp-" in p.name]
    assert {r.name for r in read_index(root / "checkpoints")} == {
        p.stem for p in (root / "checkpoints").glob("epoch-*.json")}
    final = validated(root)
    last = max(uninterrupted)
    assert final[last] == uninterrupted[last]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_recovery_checkpoints_mid_epoch_replace_each_other_and_resume_exactly(
        tmp_path: Path, kill_data: Path, uninterrupted: dict[int, dict]) -> None:
    root = new_run(tmp_path, kill_data, "recovering", **{"train.recovery_every_min": 1e-5})  # about every step
    killed = engine_run(root, resume=False, kill_at="recovery.prune:3")  # dies right after its third one
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:] + killed.stderr[-2000:]
    states = [p.name for p in (root / "checkpoints").glob("*.state.pt")]
    assert states == ["epoch-000-step-00000003.state.pt"]  # the older ones were replaced
    saved = [e for e in read_events(root / "events.jsonl") if e.kind == "checkpoint_saved"]
    assert [e.reason for e in saved] == ["recovery", "recovery"]  # the third was killed before its event
    done = engine_run(root, resume=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    resumed = [e for e in read_events(root / "events.jsonl") if e.kind == "resumed"]
    assert resumed[-1].checkpoint == "epoch-000-step-00000003" and resumed[-1].step == 3
    assert validated(root) == uninterrupted


@pytest.mark.parametrize("error", [errno.EROFS, errno.ENOSPC])
def test_a_runs_folder_that_cannot_be_made_is_a_message(tmp_path: Path, tiny_split: Path, capsys, monkeypatch,
                                                        error) -> None:
    runs = tmp_path / "ro" / "runs"

    def refuse(self, *args, **kwargs):
        raise OSError(error, os.strerror(error), str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    code = main(["train", "--data", str(tiny_split), "--runs", str(runs), "--model", "test_resnet", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and str(runs) in err and "cannot write here" in err and "Traceback" not in err


@pytest.mark.slow
def test_recovery_checkpoints_are_written_between_steps_and_pruned(tmp_path: Path, kill_data: Path) -> None:
    """In one process (no engine start-up): a recovery checkpoint at every step boundary once the interval has
    passed, each replacing the one before; the epoch's own checkpoint then replaces the last of them."""
    from engine.contract.runstore import EventWriter
    from engine.sink import EventSink
    from engine.train import Trainer

    root = new_run(tmp_path, kill_data, "inproc", **{"train.epochs": 1, "train.recovery_every_min": 1e-5})
    paths = RunPaths(root)
    sink = EventSink(EventWriter(paths.events), [])
    try:
        finished = Trainer(paths, load_config(paths.config), sink).run()
    finally:
        sink.close()
    assert finished.status == "completed"
    saved = [e for e in read_events(paths.events) if e.kind == "checkpoint_saved"]
    assert [e.reason for e in saved][-1] == "epoch" and [e.reason for e in saved].count("recovery") >= 3
    assert [e.step for e in saved if e.reason == "recovery"][:3] == [1, 2, 3]
    assert [p.name for p in paths.checkpoints.glob("*.state.pt")] == ["epoch-001.state.pt"]
    assert not list(paths.checkpoints.glob("*-step-*"))


# ---------------------------------------------------------------- issue 24: run settings refused before a folder exists


@pytest.mark.parametrize(("flags", "fragment"), [(["--device", "cuda:99"], "train.device = 'cuda:99'"),
                                                  (["--batch-size", "1000000000"], "automatic learning rate would be"),
                                                  (["--workers", "100000"], "data.workers = 100000")])
def test_a_run_that_cannot_start_leaves_no_run_folder(tmp_path: Path, tiny_split: Path, capsys, flags, fragment) -> None:
    runs = tmp_path / "runs"
    code = main(["train", "--data", str(tiny_split), "--runs", str(runs), "--model", "test_resnet", "--epochs", "1",
                 *flags])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and "Traceback" not in err
    assert not runs.exists() or not any(runs.iterdir())


def test_recovery_every_min_has_a_train_flag() -> None:
    from engine.cli import build_parser
    from engine.cli.common import overrides

    args = build_parser()[0].parse_args(["train", "--recovery-every-min", "2.5"])
    assert overrides(args)["train.recovery_every_min"] == 2.5


def test_best_never_points_at_an_unvalidated_recovery_checkpoint(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, "auc", True, keep_top_k=2)
    manager.save(epoch=1, step=5, weights=weights(1), sidecar=Sidecar(model="toy"), state={"epoch": 1},
                 metric_value=None, reason="recovery")
    assert not (tmp_path / "best.safetensors").exists() and (tmp_path / "last.safetensors").exists()
    assert manager.recover() == [] and not (tmp_path / "best.safetensors").exists()
    manager.save(epoch=1, step=10, weights=weights(2), sidecar=Sidecar(model="toy"), state={"epoch": 1},
                 metric_value=0.7, reason="epoch")
    assert os.readlink(tmp_path / "best.safetensors") == "epoch-001.safetensors"


def test_a_huge_run_name_prints_a_bounded_message(tmp_path: Path, tiny_split: Path, capsys) -> None:
    code = main(["train", "--data", str(tiny_split), "--runs", str(tmp_path / "runs"), "--model", "test_resnet",
                 "--name", "x/" * 2_500_000])
    err = capsys.readouterr().err
    assert code == 2 and "is not usable as a folder name" in err and "5000000 characters" in err
    assert len(err) < 2000
