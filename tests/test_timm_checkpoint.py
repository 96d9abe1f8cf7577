"""Checkpoints of timm's own train.py: read with weights_only=True and argparse.Namespace allowed, nothing else."""

from __future__ import annotations

import argparse
import json
import pathlib
import time
from pathlib import Path

import pytest
import timm
import torch

from engine.checkpoint_loading import inference_setup, load_checkpoint
from engine.cli import main
from engine.contract.errors import CheckpointError
from engine.models import read_checkpoint


def train_py_checkpoint(path: Path, args: argparse.Namespace | None = None, **extra) -> torch.nn.Module:
    """What timm's CheckpointSaver writes: state_dict, arch, args (a Namespace), epoch, metric, optimizer."""
    model = timm.create_model("test_resnet", num_classes=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model(torch.zeros(2, 3, 48, 48)).sum().backward()
    optimizer.step()  # a real optimizer state: momentum buffers
    args = args or argparse.Namespace(model="test_resnet", img_size=48, input_size=None, lr=0.01, epochs=3,
                                      mean=None, std=None, data_dir="/data", aa=None, scale=[0.08, 1.0])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 3, "arch": "test_resnet", "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                "version": 2, "args": args, "metric": 81.25, **extra}, path)
    return model


def test_read_with_the_model_name_and_size(tmp_path: Path):
    path = tmp_path / "output" / "model_best.pth.tar"
    model = train_py_checkpoint(path)
    state, info = read_checkpoint(path)
    assert set(state) == set(model.state_dict())
    assert info.arch == "test_resnet" and info.img_size == 48
    loaded = load_checkpoint(path, inference_setup("cpu"))  # no --model, no --img-size
    assert loaded.spec.img_size == 48
    key = next(iter(model.state_dict()))
    assert torch.equal(loaded.model.state_dict()[key], model.state_dict()[key])
    assert load_checkpoint(tmp_path / "output", inference_setup("cpu")).path == path  # the output folder
    no_size = tmp_path / "input-size" / "checkpoint-2.pth.tar"
    train_py_checkpoint(no_size, argparse.Namespace(model="test_resnet", img_size=None, input_size=(3, 40, 40)))
    assert load_checkpoint(no_size, inference_setup("cpu")).spec.img_size == 40


class Sneaky:
    def __reduce__(self):  # unpickling this would run code
        return (time.sleep, (0,))


@pytest.mark.parametrize("extra, args", [
    ({"hook": Sneaky()}, None),
    ({}, argparse.Namespace(model="test_resnet", img_size=48, checkpoint=pathlib.PurePosixPath("/x"))),
    ({}, argparse.Namespace(model="test_resnet", img_size=48, callback=Sneaky())),
])
def test_any_other_pickled_object_is_refused(tmp_path: Path, extra, args):
    path = tmp_path / "model_best.pth.tar"
    train_py_checkpoint(path, args, **extra)
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_checkpoint(path, inference_setup("cpu"))


def test_evaluate_and_predict_take_it(tmp_path: Path, tiny_ffdi: Path, capsys):
    path = tmp_path / "output" / "model_best.pth.tar"
    train_py_checkpoint(path)
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--checkpoint", str(path), "--data", str(tiny_ffdi), "--split", "val", "--out", str(out),
                 "--workers", "0", "--device", "cpu", "--progress", "json"]) == 0
    assert json.loads(out.read_text())["metrics"]["count"] == 48
    submission = tmp_path / "sub.csv"
    assert main(["predict", "--checkpoint", str(path), "--data", str(tiny_ffdi), "--split", "test", "--out",
                 str(submission), "--workers", "0", "--device", "cpu", "--progress", "json"]) == 0
    assert len(submission.read_text().splitlines()) == 21
    capsys.readouterr()


@pytest.mark.slow
def test_the_matrix_and_an_ensemble_take_it(tmp_path: Path, tiny_ffdi: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a matrix of checkpoints outside any run folder is written here
    first, second = tmp_path / "a" / "model_best.pth.tar", tmp_path / "b" / "checkpoint-1.pth.tar"
    train_py_checkpoint(first)
    train_py_checkpoint(second)
    code = main(["evaluate", "--checkpoint", str(first), str(second), "--data", str(tiny_ffdi), "--split", "val",
                 "--ensemble", "mean", "--workers", "0", "--device", "cpu", "--name", "timm", "--progress", "json"])
    assert code == 0, capsys.readouterr().err
    matrix = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert matrix["rows"] == ["model_best.pth", "checkpoint-1.pth", "ensemble-mean"]
    assert (tmp_path / matrix["matrix"]).is_file()
