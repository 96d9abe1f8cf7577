"""``ffdv export``: CSV tables read back with pandas; TensorBoard event files read back with TensorBoard's reader."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from engine.cli import main
from tests.conftest import install_fixture_runs
from tests.test_compare import write_timm_folder

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return install_fixture_runs(tmp_path / "runs")


def test_csv_export_reads_back(runs: Path, tmp_path: Path):
    write_timm_folder(runs / "timm-run")
    out = tmp_path / "out"
    assert main(["export", "finished", "stopped", "timm-run", "--runs", str(runs), "--csv", str(out)]) == 0
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns[:4]) == ["run", "epoch", "step", "train_loss"]
    finished = metrics[metrics.run == "finished"]
    assert finished.epoch.tolist() == [1, 2, 3] and finished.step.tolist() == [12, 24, 36]
    assert finished.auc.tolist() == [0.716553, 0.742676, 0.820557]
    assert metrics[metrics.run == "timm-run"].accuracy.tolist() == pytest.approx([0.6, 0.7, 0.65])
    table = pd.read_csv(out / "runs.csv").set_index("run")
    assert table.loc["finished", "best_value"] == 0.820557 and table.loc["finished", "best_epoch"] == 3
    assert table.loc["stopped", "train.seed"] == 4 and table.loc["finished", "status"] == "finished"
    assert table.loc["timm-run", "kind"] == "timm" and table.loc["timm-run", "timm.mixup"] == 0.2
    assert pd.isna(table.loc["finished", "timm.mixup"])  # a setting a run lacks is empty, not made up


def test_export_needs_a_destination(runs: Path, capsys):
    assert main(["export", "finished", "--runs", str(runs)]) == 2
    assert "--csv DIR" in capsys.readouterr().err


def test_tensorboard_missing_names_the_extra(runs: Path, tmp_path: Path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith(("tensorboard", "torch.utils.tensorboard")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    assert main(["export", "finished", "--runs", str(runs), "--tensorboard", str(tmp_path / "tb"),
                 "--csv", str(tmp_path / "csv")]) == 2
    assert "ffdv-tui[tensorboard]" in capsys.readouterr().err
    assert not (tmp_path / "csv").exists()  # nothing half done


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="tensorboard is not installed (pip install 'ffdv-tui[tensorboard]')")
def test_tensorboard_export_reads_back(runs: Path, tmp_path: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    assert main(["export", "finished", "--runs", str(runs), "--tensorboard", str(out)]) == 0
    events = EventAccumulator(str(out / "finished"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    assert [s.value for s in events.Scalars("val/auc")] == pytest.approx([0.716553, 0.742676, 0.820557])
    assert [s.step for s in events.Scalars("val/auc")] == [1, 2, 3]
    assert len(events.Scalars("train/loss_step")) == 36 and events.Scalars("train/loss_step")[-1].step == 36
    assert len(events.Scalars("epoch/train_loss")) == 3
    assert "val/pr_best" in tags["tensors"]
    assert events.Scalars("hparam/best_auc")[0].value == pytest.approx(0.820557)
    assert events.Scalars("hparam/final_recall")[0].value == pytest.approx(0.921875)  # final, beside best
    from tensorboard.plugins.hparams import plugin_data_pb2

    start = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
    assert hparams["train.seed"].number_value == 42 and hparams["model.name"].string_value == "resnet10t"
