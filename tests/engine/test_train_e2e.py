"""The engine end to end on a tiny dataset: train, checkpoints, predictions, evaluate, predict, resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import timm
import torch
from conftest import FAST_TRAIN
from safetensors.torch import load_file

from engine.cli import main
from engine.contract.config import load_config, resolve, save_config
from engine.contract.protocol import (
    CheckpointSaved,
    EpochEnded,
    PredictionsWritten,
    RunError,
    RunFinished,
    RunStarted,
    RunWarning,
    Step,
    Validated,
)
from engine.contract.runstore import EventWriter, RunPaths, append_command, create_run_dir, read_events
from engine.sink import EventSink
from engine.train import Trainer


def kinds(events) -> list[str]:
    return [e.kind for e in events]


def train(data: Path, runs: Path, *extra: str) -> int:
    return main(["train", "--data", str(data), "--runs", str(runs), *FAST_TRAIN, *extra])


@pytest.fixture(scope="module")
def trained(tiny_ffdi: Path, tmp_path_factory: pytest.TempPathFactory) -> RunPaths:
    runs = tmp_path_factory.mktemp("runs")
    assert train(tiny_ffdi, runs, "--epochs", "3", "--name", "tiny") == 0
    return RunPaths(runs / "tiny")


def test_run_folder_holds_config_events_checkpoints_predictions(trained: RunPaths) -> None:
    events = read_events(trained.events)
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    assert events[-1].status == "completed" and events[-1].epochs_completed == 3
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert kinds(events).count("epoch_ended") == 3 and kinds(events).count("validated") == 3
    assert all(isinstance(e, Step) and e.loss > 0 for e in events if e.kind == "step")
    config = load_config(trained.config)
    assert config.model.name == "resnet10t" and config.data.img_size == 64
    assert config.optim.lr == pytest.approx(0.002)
    assert "versions" in trained.config.read_text()
    for alias in ("best", "last"):
        assert (trained.checkpoints / f"{alias}.safetensors").exists()
        assert (trained.checkpoints / f"{alias}.json").exists()
    assert os.path.realpath(trained.checkpoints / "last.safetensors").endswith("epoch-003.safetensors")
    # Predictions of every validation: each val image exactly once, scores in [0, 1].
    written = [e for e in events if isinstance(e, PredictionsWritten)]
    assert [e.epoch for e in written] == [1, 2, 3]
    frame = pd.read_csv(trained.root / written[-1].path)
    labels = pd.read_csv(Path(config.data.root) / "valset_label.txt")
    assert list(frame.columns) == ["img_name", "target", "score", "pred"]
    assert frame["img_name"].tolist() == labels["img_name"].tolist()
    assert frame["target"].tolist() == labels["target"].tolist()
    assert frame["score"].between(0, 1).all()
    assert (frame["pred"] == (frame["score"] > 0.5)).all()


def test_events_mention_files_only_after_they_exist(trained: RunPaths) -> None:
    for event in read_events(trained.events):
        if isinstance(event, (CheckpointSaved, PredictionsWritten)):
            assert (trained.root / event.path).exists() or event.kind == "checkpoint_saved"


def test_the_model_learns_the_tiny_set(trained: RunPaths) -> None:
    validations = [e for e in read_events(trained.events) if isinstance(e, Validated)]
    assert validations[-1].metrics["auc"] >= 0.9
    best = max(validations, key=lambda e: (e.metrics["auc"], e.epoch))
    assert best.is_best
    sidecar = json.loads((trained.checkpoints / "best.json").read_text())
    assert sidecar["epoch"] == best.epoch and sidecar["metrics"]["auc"] == best.metrics["auc"]


def test_checkpoint_loads_in_two_lines_and_its_backbone_is_plain_timm(trained: RunPaths) -> None:
    """As docs/run-folder.md shows: build_network(model, stem) takes the default (SRM-stem) checkpoint; behind it, timm's."""
    from engine.models import build_network

    sidecar = json.loads((trained.checkpoints / "best.json").read_text())
    assert sidecar["model"] == "resnet10t" and sidecar["img_size"] == 64 and sidecar["num_classes"] == 2
    assert len(sidecar["mean"]) == 3 and sidecar["config"]["train"]["epochs"] == 3 and sidecar["stem"] == "srm"
    state = load_file(str(trained.checkpoints / "best.safetensors"))
    model = build_network("resnet10t", sidecar["stem"])
    model.load_state_dict(state)  # strict: every key fits
    backbone = timm.create_model("resnet10t", num_classes=2)
    backbone.load_state_dict({k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")})
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 2)


def test_evaluate_reproduces_the_validation_metrics(trained: RunPaths, tiny_ffdi: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--checkpoint", str(trained.root), "--data", str(tiny_ffdi / "valset"),
                 "--out", str(out), "--workers", "0"]) == 0
    report = json.loads(out.read_text())
    sidecar = json.loads((trained.checkpoints / "best.json").read_text())
    for key in ("auc", "ap", "accuracy", "f1", "eer", "loss"):
        assert report["metrics"][key] == pytest.approx(sidecar["metrics"][key], abs=1e-5), key
    assert report["scored"] == 48 and report["unreadable"] == {}
    predictions = pd.read_csv(report["predictions"])
    assert len(predictions) == 48


def test_evaluate_default_output_goes_into_the_run(trained: RunPaths, tiny_ffdi: Path) -> None:
    assert main(["evaluate", "--checkpoint", str(trained.checkpoints / "last.safetensors"),
                 "--data", str(tiny_ffdi), "--split", "val", "--workers", "0"]) == 0
    assert (trained.evaluations / "epoch-003-on-valset.json").is_file()


def test_predict_writes_the_submission_in_label_file_order(trained: RunPaths, tiny_ffdi: Path, tmp_path: Path) -> None:
    out = tmp_path / "submission.csv"
    assert main(["predict", "--checkpoint", str(trained.root), "--data", str(tiny_ffdi / "testset"),
                 "--out", str(out), "--workers", "0"]) == 0
    sub = pd.read_csv(out)
    order = pd.read_csv(tiny_ffdi / "testset_label.txt")["img_name"].tolist()
    assert list(sub.columns) == ["img_name", "y_pred"]
    assert sub["img_name"].tolist() == order
    assert sub["y_pred"].between(0, 1).all()


def test_predict_unlabelled_folder_uses_sorted_names(trained: RunPaths, tiny_ffdi: Path, tmp_path: Path) -> None:
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    names = sorted(os.listdir(tiny_ffdi / "testset"), reverse=True)[:5]
    for name in names:
        (folder / name).write_bytes((tiny_ffdi / "testset" / name).read_bytes())
    out = tmp_path / "sub.csv"
    assert main(["predict", "--checkpoint", str(trained.root), "--data", str(folder), "--out", str(out),
                 "--workers", "0"]) == 0
    assert pd.read_csv(out)["img_name"].tolist() == sorted(names)


def test_a_recipe_run_evaluates_and_predicts_as_it_validated(tiny_ffdi: Path, tmp_path: Path) -> None:
    """Native crops, the rgb+srm stem, mixup and cutmix together: evaluate and predict rebuild the model and its crops
    from the sidecar, so they give the validation's per-image scores."""
    runs = tmp_path / "runs"
    assert main(["train", "--data", str(tiny_ffdi), "--runs", str(runs), "--model", "resnet10t", "--img-size", "32",
                 "--batch-size", "16", "--workers", "0", "--lr", "0.002", "--epochs", "2", "--crop", "native",
                 "--eval-grid", "3", "--eval-reduce", "max", "--stem", "rgb+srm", "--mixup", "0.2", "--cutmix", "1.0",
                 "--name", "recipe"]) == 0
    paths = RunPaths(runs / "recipe")
    config = load_config(paths.config)
    assert (config.data.crop, config.data.eval_grid, config.data.eval_reduce) == ("native", 3, "max")
    assert (config.model.stem, config.optim.mixup, config.optim.cutmix) == ("rgb+srm", 0.2, 1.0)
    sidecar = json.loads((paths.checkpoints / "best.json").read_text())
    assert (sidecar["stem"], sidecar["crop"], sidecar["eval_grid"], sidecar["eval_reduce"]) == ("rgb+srm", "native", 3, "max")
    assert "stem.kernels" in load_file(str(paths.checkpoints / "best.safetensors"))
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--checkpoint", str(paths.root), "--data", str(tiny_ffdi / "valset"), "--out", str(out),
                 "--workers", "0"]) == 0
    report = json.loads(out.read_text())
    for key in ("auc", "ap", "accuracy", "loss"):
        assert report["metrics"][key] == pytest.approx(sidecar["metrics"][key], abs=1e-5), key
    validated = pd.read_csv(paths.predictions / f"epoch-{sidecar['epoch']:03d}.csv")
    evaluated = pd.read_csv(report["predictions"])
    assert evaluated["img_name"].tolist() == validated["img_name"].tolist()  # each image once, in order
    assert evaluated["score"].to_numpy() == pytest.approx(validated["score"].to_numpy(), abs=2e-6)
    submission = tmp_path / "submission.csv"
    assert main(["predict", "--checkpoint", str(paths.root), "--data", str(tiny_ffdi / "valset"),
                 "--out", str(submission), "--workers", "0"]) == 0
    assert pd.read_csv(submission)["y_pred"].to_numpy() == pytest.approx(validated["score"].to_numpy(), abs=2e-6)


def test_broken_label_file_stops_before_a_run_folder_exists(tiny_copy: Path, tmp_path: Path, capsys) -> None:
    label = tiny_copy / "trainset_label.txt"
    lines = label.read_text().splitlines()
    lines[3] = "missing.jpg,1"
    lines[5] = lines[5].rsplit(",", 1)[0] + ",7"
    label.write_text("\n".join(lines) + "\n")
    runs = tmp_path / "runs"
    assert train(tiny_copy, runs, "--epochs", "1") == 2
    err = capsys.readouterr().err
    assert "trainset_label.txt" in err and "line 6" in err and "not 0 or 1" in err and "Fix:" in err
    assert not runs.exists() or not any(runs.iterdir())


def test_unknown_model_is_refused_with_suggestions(tiny_ffdi: Path, tmp_path: Path, capsys) -> None:
    assert main(["train", "--data", str(tiny_ffdi), "--runs", str(tmp_path), "--model", "resnet10"]) == 2
    assert "resnet10t" in capsys.readouterr().err


def _corrupt(folder: Path, names: list[str]) -> None:
    (folder / names[0]).write_bytes(b"")  # zero bytes
    data = (folder / names[1]).read_bytes()
    (folder / names[1]).write_bytes(data[: len(data) // 3])  # truncated
    if len(names) > 2:
        (folder / names[2]).write_text("not an image")


def test_unreadable_images_are_skipped_and_reported(tiny_copy: Path, tmp_path: Path) -> None:
    _corrupt(tiny_copy / "trainset", ["train00001.jpg", "train00002.jpg", "train00003.jpg"])
    _corrupt(tiny_copy / "valset", ["val00000.jpg", "val00001.jpg"])
    assert train(tiny_copy, tmp_path, "--epochs", "2", "--name", "bad") == 0
    paths = RunPaths(tmp_path / "bad")
    events = read_events(paths.events)
    warnings = [e for e in events if isinstance(e, RunWarning) and e.code == "bad_image"]
    assert len(warnings) == 5  # once per image, not once per epoch
    assert events[-1].status == "completed" and events[-1].bad_images == 5
    listed = paths.bad_images.read_text().splitlines()
    assert len(listed) == 5 and any(line.startswith("trainset/train00001.jpg\tempty file") for line in listed)
    validated = [e for e in events if isinstance(e, Validated)][-1]
    assert validated.num_images == 46
    frame = pd.read_csv(paths.predictions / "epoch-002.csv")
    assert "val00000.jpg" not in frame["img_name"].tolist() and len(frame) == 46


def test_unreadable_image_fails_the_run_when_asked(tiny_copy: Path, tmp_path: Path) -> None:
    _corrupt(tiny_copy / "trainset", ["train00001.jpg", "train00002.jpg"])
    assert train(tiny_copy, tmp_path, "--epochs", "2", "--name", "strict", "--on-bad-image", "fail") == 1
    events = read_events(RunPaths(tmp_path / "strict").events)
    assert events[-1].status == "failed"
    errors = [e for e in events if isinstance(e, RunError)]
    assert errors and "cannot decode" in errors[0].message and "on_bad_image" in errors[0].message


def _config(data: Path, runs: Path, epochs: int, **overrides):
    values = {"data.root": str(data), "data.img_size": 64, "data.workers": 0, "train.batch_size": 16,
              "train.epochs": epochs, "run.runs": str(runs), "optim.lr": 0.002, **overrides}
    return resolve(load_config(overrides=values))


def _run(paths: RunPaths, config, resume: bool = False, listeners=()) -> list:
    sink = EventSink(EventWriter(paths.events), listeners)
    try:
        Trainer(paths, config, sink).run(resume=resume)
    finally:
        sink.close()
    return read_events(paths.events)


def _validated(events) -> dict[int, dict]:
    return {e.epoch: e.metrics for e in events if isinstance(e, Validated)}


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_mid_epoch_gives_the_same_metrics(tiny_ffdi: Path, tmp_path: Path, workers: int) -> None:
    # mixup and cutmix draw from numpy's RNG: seeded per step, a resumed run mixes as the straight one did
    extra = {"data.workers": workers, "train.ema": True, "model.drop_rate": 0.2, "optim.mixup": 0.2, "optim.cutmix": 1.0}
    if workers:  # and the recipes' model and input: the stem and native crops come back from config.toml
        extra.update({"model.stem": "rgb+srm", "data.crop": "native", "data.img_size": 48, "data.eval_grid": 2})
    config = _config(tiny_ffdi, tmp_path, 3, **extra)
    straight = create_run_dir(tmp_path, "straight")
    save_config(straight, config)
    reference = _validated(_run(straight, config))

    interrupted = create_run_dir(tmp_path, "interrupted")
    save_config(interrupted, config)

    def stop_in_second_epoch(event) -> None:
        if isinstance(event, Step) and event.epoch == 1 and event.epoch_step >= 2:
            append_command(interrupted, "stop")

    first = _run(interrupted, config, listeners=[stop_in_second_epoch])
    assert first[-1].status == "stopped" and first[-1].epochs_completed == 1
    assert any(isinstance(e, CheckpointSaved) and e.reason == "stop" for e in first)
    events = _run(interrupted, load_config(interrupted.config), resume=True)
    resumed = [e for e in events if e.kind == "resumed"]
    assert resumed and resumed[-1].reason == "restart" and resumed[-1].epoch == 1
    assert events[-1].status == "completed"
    after = _validated(events)
    assert set(after) == {1, 2, 3}
    for epoch in (2, 3):
        for key in ("auc", "loss", "accuracy", "eer"):
            assert after[epoch][key] == reference[epoch][key], (epoch, key)
    assert sum(1 for e in events if isinstance(e, EpochEnded) and e.epoch == 1) == 1


def test_every_training_option_runs(tiny_ffdi: Path, tmp_path: Path) -> None:
    config = _config(tiny_ffdi, tmp_path, 2, **{
        "optim.optimizer": "sgd", "optim.lr": 0.05, "optim.schedule": "step", "optim.step_epochs": 1,
        "optim.step_gamma": 0.5, "optim.warmup_epochs": 0, "optim.clip_grad": 1.0, "optim.accum_steps": 2,
        "optim.label_smoothing": 0.1, "train.ema": True, "data.augment": "strong", "data.eval_crop": 0.875,
        "train.best_metric": "loss", "train.keep_top_k": 1,
    })
    paths = create_run_dir(tmp_path, "options")
    save_config(paths, config)
    events = _run(paths, config)
    assert events[-1].status == "completed", [e for e in events if e.kind == "error"]
    lrs = {e.epoch: e.lr for e in events if isinstance(e, Step)}
    assert lrs[0] == pytest.approx(0.05) and lrs[1] == pytest.approx(0.025)  # step schedule halves each epoch
    validated = [e for e in events if isinstance(e, Validated)]
    assert all(v.weights == "ema" for v in validated)
    best = min(validated, key=lambda v: (v.metrics["loss"], -v.epoch))
    assert best.is_best
    sidecar = json.loads((paths.checkpoints / "best.json").read_text())
    assert sidecar["weights"] == "ema" and sidecar["eval_crop"] == 0.875 and sidecar["epoch"] == best.epoch
