"""The evaluation matrix: its clean row is `ffdv evaluate`, ensembles and TTA are what they say, cells resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from conftest import write_ffdi
from safetensors.torch import load_file, save_file

from engine.checkpoint_loading import inference_setup
from engine.cli import main
from engine.contract.perturbspec import parse_perturbation
from engine.matrix import MatrixRunner, Row, load_members, score_pass
from engine.models import build_network
from engine.stems import backbone_of

MODEL = "resnet10t"


def make_checkpoint(run: Path, seed: int, model: str = MODEL, img_size: int = 32, mean=None, std=None,
                    stem: str = "rgb", **sidecar_fields) -> Path:
    """A run folder whose checkpoints/best.* is a randomly initialised tiny model (distinct per seed)."""
    torch.manual_seed(seed)
    net = build_network(model, stem, pretrained=False)
    with torch.no_grad():  # random BatchNorm statistics, so that models differ and scores spread
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    folder = run / "checkpoints"
    folder.mkdir(parents=True)
    config = timm.data.resolve_model_data_config(backbone_of(net))
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "epoch-001.safetensors"))
    sidecar = {"model": model, "num_classes": 2, "classes": ["real", "fake"], "img_size": img_size,
               "mean": list(mean or config["mean"]), "std": list(std or config["std"]), "eval_crop": 1.0,
               "weights": "model", "metrics": None, "run": run.name, "format": 1, "epoch": 1, "step": 1,
               "reason": "epoch", "best_metric": "auc", "metric_value": None, "is_best": True, "created": 0.0,
               "stem": stem, **sidecar_fields}
    (folder / "epoch-001.json").write_text(json.dumps(sidecar))
    shutil.copyfile(folder / "epoch-001.safetensors", folder / "best.safetensors")
    shutil.copyfile(folder / "epoch-001.json", folder / "best.json")
    return run


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_ffdi(tmp_path_factory.mktemp("matrix") / "data", {"val": 24, "test": 6}, seed=5, size=48)


@pytest.fixture(scope="module")
def other_data(tmp_path_factory) -> Path:
    return write_ffdi(tmp_path_factory.mktemp("matrix-other") / "other", {"val": 16}, seed=9, size=56)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for i, name in enumerate(("a", "b", "c")):
        make_checkpoint(root / name, seed=i)
    return root


COMMON = ["--batch-size", "8", "--workers", "0", "--device", "cpu"]


def run_matrix(args: list[str]) -> int:
    return main(["evaluate", *args, *COMMON])


def matrix(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "matrix.csv")


def row(table: pd.DataFrame, model: str, perturbation: str = "none", dataset: str = "valset") -> pd.Series:
    found = table[(table["model"] == model) & (table["perturbation"] == perturbation) & (table["dataset"] == dataset)]
    assert len(found) == 1, (model, perturbation, dataset)
    return found.iloc[0]


METRICS = ["auc", "ap", "accuracy", "precision", "recall", "f1", "eer", "tpr_at_fpr_1e-3", "loss"]


def test_the_clean_row_equals_a_single_evaluate_exactly(runs: Path, data: Path, tmp_path: Path, capsys) -> None:
    single = tmp_path / "single.json"
    assert main(["evaluate", "--checkpoint", str(runs / "a"), "--data", str(data), "--out", str(single), *COMMON]) == 0
    assert "metric      value" in capsys.readouterr().out  # one checkpoint, one split: today's output
    expected = json.loads(single.read_text())["metrics"]
    out = tmp_path / "m"
    assert run_matrix(["--checkpoint", str(runs / "a"), "--data", str(data), "--perturb", "jpeg:50", "--out", str(out)]) == 0
    got = row(matrix(out), "a")
    for metric in METRICS:
        assert got[metric] == pytest.approx(expected[metric], abs=0, rel=0) if expected[metric] is not None \
            else pd.isna(got[metric])
    per_image = pd.read_csv(single.with_suffix(".csv"))
    scores = pd.read_parquet(out / "scores.parquet")
    clean = scores[scores["perturbation"] == "none"]
    assert np.array_equal(np.round(clean["a"].to_numpy(), 6), per_image["score"].to_numpy())
    assert row(matrix(out), "a", "jpeg:50")["drop_auc"] == pytest.approx(got["auc"] - row(matrix(out), "a", "jpeg:50")["auc"])


def test_matrix_files_and_settings(runs: Path, data: Path, other_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    assert run_matrix(["--checkpoint", str(runs / "a"), str(runs / "b" / "checkpoints" / "epoch-001.safetensors"),
                       "--data", str(data), str(other_data / "valset"), "--perturb", "jpeg:75,noise:0.05",
                       "--ensemble", "mean,rank", "--out", str(out)]) == 0
    table = matrix(out)
    assert set(table["model"]) == {"a", "b/epoch-001", "ensemble-mean", "ensemble-rank"}
    assert set(table["dataset"]) == {"valset", "valset-2"} or len(set(table["dataset"])) == 2
    assert len(table) == 4 * 2 * 3
    for column in [*METRICS, *(f"drop_{m}" for m in METRICS), "images", "unreadable"]:
        assert column in table.columns
    assert (table[table["perturbation"] == "none"]["drop_auc"] == 0).all()
    settings = json.loads((out / "matrix.json").read_text())["settings"]
    assert settings["perturbations"] == ["none", "jpeg:75", "noise:0.05"]
    assert [c["model"] for c in settings["checkpoints"]] == [MODEL, MODEL]
    assert settings["seed"] == 0 and settings["ensembles"] == ["mean", "rank"]
    scores = pd.read_parquet(out / "scores.parquet")
    assert len(scores) == (24 + 16) * 3


def test_mean_ensemble_is_the_mean_of_its_members_and_an_ensemble_of_one_is_its_member(runs, data, tmp_path) -> None:
    out = tmp_path / "m"
    assert run_matrix(["--checkpoint", str(runs / "a"), str(runs / "b"), str(runs / "c"), "--data", str(data),
                       "--ensemble", "mean", "--out", str(out)]) == 0
    scores = pd.read_parquet(out / "scores.parquet")
    assert np.allclose(scores["ensemble-mean"], scores[["a", "b", "c"]].mean(axis=1), rtol=0, atol=1e-12)
    one = tmp_path / "one"
    assert run_matrix(["--checkpoint", str(runs / "a"), "--data", str(data), "--ensemble", "mean,rank",
                       "--out", str(one)]) == 0
    table = matrix(one)
    member, mean, rank = row(table, "a"), row(table, "ensemble-mean"), row(table, "ensemble-rank")
    for metric in ("auc", "ap", "accuracy", "precision", "recall", "f1", "eer", "tpr_at_fpr_1e-3"):
        assert mean[metric] == member[metric] or (pd.isna(mean[metric]) and pd.isna(member[metric]))
    assert mean["loss"] == pytest.approx(member["loss"], rel=1e-5)
    assert rank["auc"] == member["auc"]  # ranks keep the order


def test_soup_equals_a_hand_averaged_state_dict(runs: Path, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    assert run_matrix(["--checkpoint", str(runs / "a"), str(runs / "b"), "--data", str(data), "--ensemble", "soup",
                       "--out", str(out)]) == 0
    states = [load_file(str(runs / n / "checkpoints" / "best.safetensors")) for n in ("a", "b")]
    averaged = {k: ((states[0][k].double() + states[1][k].double()) / 2).to(v.dtype) if v.is_floating_point() else v
                for k, v in states[0].items()}
    hand = tmp_path / "hand"
    (hand / "checkpoints").mkdir(parents=True)
    save_file(averaged, str(hand / "checkpoints" / "best.safetensors"))
    shutil.copyfile(runs / "a" / "checkpoints" / "best.json", hand / "checkpoints" / "best.json")
    single = tmp_path / "hand.json"
    assert main(["evaluate", "--checkpoint", str(hand), "--data", str(data), "--out", str(single), *COMMON]) == 0
    scores = pd.read_parquet(out / "scores.parquet")
    assert np.array_equal(np.round(scores["soup"].to_numpy(), 6), pd.read_csv(single.with_suffix(".csv"))["score"])


def test_greedy_soup_keeps_the_best_and_adds_only_what_helps(runs: Path, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    assert run_matrix(["--checkpoint", str(runs / "a"), str(runs / "b"), str(runs / "c"), "--data", str(data),
                       "--ensemble", "greedy", "--out", str(out)]) == 0
    report = json.loads((out / "matrix.json").read_text())
    greedy = report["greedy_soup"]
    table = matrix(out)
    best = max(("a", "b", "c"), key=lambda k: row(table, k)["auc"])
    assert greedy["ingredients"][0] == best
    kept = [h for h in greedy["history"] if h["kept"]]
    assert [h["auc"] for h in kept] == sorted(h["auc"] for h in kept)
    assert row(table, "greedy-soup")["auc"] == pytest.approx(greedy["auc"])


def test_soup_across_architectures_is_refused(runs: Path, data: Path, tmp_path: Path, capsys) -> None:
    other = make_checkpoint(tmp_path / "r18", seed=4, model="test_resnet")
    code = run_matrix(["--checkpoint", str(runs / "a"), str(other), "--data", str(data), "--ensemble", "soup",
                       "--out", str(tmp_path / "m")])
    assert code == 2
    err = capsys.readouterr().err
    assert "one architecture" in err and "resnet10t" in err and "test_resnet" in err
    assert not (tmp_path / "m").exists()


def test_tta_flip_is_the_mean_of_the_model_on_x_and_on_flipped_x(runs: Path, data: Path, tmp_path: Path) -> None:
    setup = inference_setup("cpu")
    from engine.data.dataset import resolve_split

    split = resolve_split(data)
    (member,) = load_members([str(runs / "a")], setup)
    result = score_pass([(Row("a"), member), (Row("a", ("flip",)), member)], split, parse_perturbation("none"), setup,
                        8, 0)
    from engine.data.images import open_rgb
    from engine.loader import DeviceNormalizer, eval_transform

    transform, decode = eval_transform(member.spec)
    normalizer = DeviceNormalizer(member.spec, setup.device, False)
    x = normalizer(torch.stack([transform(open_rgb(split.folder / n, decode)) for n in split.names]))
    with torch.inference_mode():
        model = member.loaded.model.eval()
        plain = model(x).softmax(1)[:, 1].double()
        flipped = model(x.flip(-1)).softmax(1)[:, 1].double()
    assert np.allclose(result.scores["a +flip"], ((plain + flipped) / 2).numpy(), atol=1e-6)
    assert np.allclose(result.scores["a"], plain.numpy(), atol=1e-6)
    assert not np.allclose(result.scores["a +flip"], result.scores["a"], atol=1e-6)
    out = tmp_path / "m"
    assert run_matrix(["--checkpoint", str(runs / "a"), "--data", str(data), "--tta", "flip,scales",
                       "--out", str(out)]) == 0
    assert set(matrix(out)["model"]) == {"a", "a +flip", "a +scales"}


def test_shared_batch_scores_equal_separate_runs_and_mixed_inputs_are_handled(runs, data, tmp_path) -> None:
    setup = inference_setup("cpu")
    from engine.data.dataset import resolve_split

    split = resolve_split(data)
    big = make_checkpoint(tmp_path / "big", seed=7, img_size=40)
    odd = make_checkpoint(tmp_path / "odd", seed=8, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    members = load_members([str(runs / "a"), str(runs / "b"), str(odd)], setup)
    perturbation = parse_perturbation("jpeg:60+noise:0.02")
    together = score_pass([(Row(m.key), m) for m in members], split, perturbation, setup, 8, 0, seed=3)
    for member in members:
        alone = score_pass([(Row(member.key), member)], split, perturbation, setup, 8, 0, seed=3)
        assert np.array_equal(alone.scores[member.key], together.scores[member.key])
    # another input size: its own resize from the same decoded image; every model is scored
    out = tmp_path / "m"
    assert run_matrix(["--checkpoint", str(runs / "a"), str(big), str(odd), "--data", str(data), "--out", str(out)]) == 0
    table = matrix(out)
    assert set(table["model"]) == {"a", "big", "odd"} and table["auc"].notna().all()
    settings = json.loads((out / "matrix.json").read_text())["settings"]["checkpoints"]
    assert [c["img_size"] for c in settings] == [32, 40, 32]


def test_a_native_crop_srm_checkpoint_scores_in_a_matrix_as_in_a_single_evaluate(runs, data, tmp_path) -> None:
    native = make_checkpoint(tmp_path / "native", seed=4, stem="rgb+srm", crop="native", eval_grid=2, eval_reduce="max")
    single = tmp_path / "single.json"
    assert main(["evaluate", "--checkpoint", str(native), "--data", str(data), "--out", str(single), *COMMON]) == 0
    expected = json.loads(single.read_text())["metrics"]
    out = tmp_path / "m"
    assert run_matrix(["--checkpoint", str(runs / "a"), str(native), "--data", str(data), "--tta", "flip",
                       "--out", str(out)]) == 0
    got = row(matrix(out), "native")
    for metric in ("auc", "ap", "accuracy", "eer", "loss"):
        assert got[metric] == pytest.approx(expected[metric], abs=1e-12), metric
    scores = pd.read_parquet(out / "scores.parquet")
    assert np.array_equal(np.round(scores["native"].to_numpy(), 6), pd.read_csv(single.with_suffix(".csv"))["score"].to_numpy())
    assert row(matrix(out), "native +flip")["auc"] is not None and row(matrix(out), "a")["auc"] is not None
    settings = json.loads((out / "matrix.json").read_text())["settings"]["checkpoints"]
    assert [(c["crop"], c["eval_grid"], c["stem"]) for c in settings] == [("resize", 1, "rgb"), ("native", 2, "rgb+srm")]


def test_an_unlabelled_split_is_refused_with_the_reason(runs: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (20, 20), (i * 40, 0, 0)).save(folder / f"{i}.png")
    code = run_matrix(["--checkpoint", str(runs / "a"), str(runs / "b"), "--data", str(folder), "--out", str(tmp_path / "m")])
    assert code == 2
    err = capsys.readouterr().err
    assert "has no labels" in err and "cannot be evaluated" in err and str(folder) in err


def test_a_bad_perturbation_spec_is_named(runs: Path, data: Path, tmp_path: Path, capsys) -> None:
    assert run_matrix(["--checkpoint", str(runs / "a"), "--data", str(data), "--perturb", "jpeg:60", "sharpen:1",
                       "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "'sharpen'" in err and "jpeg:Q" in err


def test_a_stopped_matrix_keeps_its_finished_cells(runs: Path, data: Path, tmp_path: Path) -> None:
    from engine.cli import build_parser
    from engine.cli.matrix import build_plan

    out = tmp_path / "m"
    args = build_parser()[0].parse_args(["evaluate", "--checkpoint", str(runs / "a"), "--data", str(data),
                                 "--perturb", "jpeg:75", "blur:1", "--out", str(out), *COMMON])
    setup = inference_setup("cpu")

    class Stop(Exception):
        pass

    def stop_in_second_cell(progress) -> None:
        if progress.stage.endswith("jpeg:75"):
            raise Stop

    with pytest.raises(Stop):
        MatrixRunner(build_plan(args, setup), setup, out, stop_in_second_cell).run()
    finished = sorted(p.name for p in (out / "cells" / "valset").iterdir())
    assert finished == ["none.parquet"]
    before = (out / "cells" / "valset" / "none.parquet").stat().st_mtime_ns
    runner = MatrixRunner(build_plan(args, setup), setup, out)
    runner.run()
    assert runner.reused_cells == ["valset · none"]
    assert runner.computed_cells == ["valset · jpeg:75", "valset · blur:1"]
    assert (out / "cells" / "valset" / "none.parquet").stat().st_mtime_ns == before
    # the CLI's re-run of the same matrix scores nothing again
    assert run_matrix(["--checkpoint", str(runs / "a"), "--data", str(data), "--perturb", "jpeg:75", "blur:1",
                       "--out", str(out)]) == 0
    assert json.loads((out / "matrix.json").read_text())["cells"]["computed"] == []


def test_predict_writes_a_submission_from_an_ensemble(runs: Path, data: Path, tmp_path: Path) -> None:
    subs = {}
    for name, extra in (("a", ["--checkpoint", str(runs / "a")]), ("b", ["--checkpoint", str(runs / "b")]),
                        ("mean", ["--checkpoint", str(runs / "a"), str(runs / "b"), "--ensemble", "mean"])):
        out = tmp_path / f"{name}.csv"
        assert main(["predict", *extra, "--data", str(data), "--out", str(out), *COMMON]) == 0
        subs[name] = pd.read_csv(out)
    assert list(subs["mean"].columns) == ["img_name", "y_pred"] and len(subs["mean"]) == 6
    assert np.allclose(subs["mean"]["y_pred"], (subs["a"]["y_pred"] + subs["b"]["y_pred"]) / 2, atol=2e-6)
    flip = tmp_path / "flip.csv"
    assert main(["predict", "--checkpoint", str(runs / "a"), "--tta", "flip", "--data", str(data), "--out", str(flip),
                 *COMMON]) == 0
    assert not np.allclose(pd.read_csv(flip)["y_pred"], subs["a"]["y_pred"], atol=1e-6)


def test_progress_json_lines_end_with_the_matrix_result(runs: Path, data: Path, tmp_path: Path, capsys) -> None:
    from engine.contract.jobs import JobProgress, MatrixResult, decode_job_message

    out = tmp_path / "m"
    assert run_matrix(["--checkpoint", str(runs / "a"), str(runs / "b"), "--data", str(data), "--perturb", "blur:1",
                       "--out", str(out), "--progress", "json"]) == 0
    messages = [decode_job_message(line) for line in capsys.readouterr().out.splitlines()]
    assert all(m is not None for m in messages)
    progress = [m for m in messages if isinstance(m, JobProgress)]
    assert progress[-1].done == progress[-1].total == 48 and progress[-1].stage == "valset · blur:1"
    assert progress[-1].eta_s == 0
    result = messages[-1]
    assert isinstance(result, MatrixResult) and result.matrix_dir == str(out) and result.rows == ["a", "b"]


def test_non_finite_scores_are_refused_naming_the_checkpoint(runs: Path, data: Path, tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(runs / "a", broken)
    weights = broken / "checkpoints" / "best.safetensors"
    state = load_file(str(weights))
    state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(weights))
    assert run_matrix(["--checkpoint", str(runs / "a"), str(broken), "--data", str(data), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "not finite" in err and str(broken) in err
