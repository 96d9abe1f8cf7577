"""The evaluation matrix in the app: mark checkpoints, the form, the job, the result screen, past matrices, flips."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import MODEL_NAMES, write_ffdi
from pilot_helpers import wait_until, wait_until_listed
from rich.console import Console
from textual.widgets import DataTable, SelectionList, Static

from engine.contract.jobs import submission_args
from engine.contract.matrixstore import auc_by_jpeg, read_summary, row_predictions
from ffdv_tui.app import FfdvApp
from ffdv_tui.predictions import PredictionTable, load_predictions
from ffdv_tui.screens.checkpoints import CheckpointsScreen
from ffdv_tui.screens.job import JobScreen
from ffdv_tui.screens.matrix import MatrixScreen
from ffdv_tui.screens.matrix_form import MatrixFormScreen
from ffdv_tui.screens.matrix_list import MatrixListScreen
from ffdv_tui.screens.predictions import PredictionsScreen
from ffdv_tui.widgets.frame_table import FrameTable

METRICS = ["auc", "ap", "accuracy", "precision", "recall", "f1", "eer", "tpr_at_fpr_1e-3", "loss"]
PERTURBATIONS = ["none", "jpeg:90", "jpeg:50", "blur:1"]


def fake_matrix(folder: Path, images: Path) -> Path:
    """A finished matrix written by hand (what the engine writes): two checkpoints and their mean ensemble."""
    rng = np.random.default_rng(0)
    names = [f"{i:03d}.jpg" for i in range(40)]
    target = np.arange(40) % 2
    models = {"a": 0.9, "b": 0.7, "ensemble-mean": 0.85}
    records, scores = [], []
    for p_index, perturbation in enumerate(PERTURBATIONS):
        part = pd.DataFrame({"dataset": "valset", "perturbation": perturbation, "img_name": names, "target": target,
                             "unreadable": ""})
        for model, quality in models.items():
            noise = 0.15 + 0.1 * p_index
            part[model] = np.clip(np.where(target == 1, quality, 1 - quality) + rng.normal(0, noise, 40), 0, 1)
        scores.append(part)
        for model, quality in models.items():
            auc = round(quality - 0.08 * p_index, 4)
            record = {"model": model, "kind": "ensemble" if model.startswith("ensemble") else "checkpoint",
                      "dataset": "valset", "perturbation": perturbation, "images": 40, "scored": 40, "unreadable": 0}
            record.update({m: auc if m == "auc" else 0.5 for m in METRICS})
            record.update({f"drop_{m}": round(0.08 * p_index, 4) if m == "auc" else 0.0 for m in METRICS})
            records.append(record)
    folder.mkdir(parents=True)
    pd.DataFrame.from_records(records).to_csv(folder / "matrix.csv", index=False)
    pd.concat(scores).to_parquet(folder / "scores.parquet", index=False)
    settings = {
        "checkpoints": [{"key": k, "kind": "checkpoint", "path": f"/runs/{k}/checkpoints/best.safetensors"} for k in "ab"],
        "datasets": [{"key": "valset", "folder": str(images), "images": 40}],
        "perturbations": PERTURBATIONS, "ensembles": ["mean"], "tta": [],
    }
    (folder / "matrix.json").write_text(json.dumps({"name": folder.name, "settings": settings, "time": 1_795_916_332,
                                                    "rows": list(models), "greedy_soup": None}))
    return folder


def test_the_store_reads_a_matrix_and_builds_commands(tmp_path: Path) -> None:
    folder = fake_matrix(tmp_path / "m", tmp_path)
    summary = read_summary(folder)
    assert summary.datasets == ["valset"] and summary.rows == ["a", "b", "ensemble-mean"]
    series = auc_by_jpeg(pd.read_csv(folder / "matrix.csv"), "valset")
    assert series["a"] == [(100, 0.9), (90, 0.82), (50, 0.74)]
    assert submission_args(summary, "ensemble-mean", "/d") == [
        "predict", "--checkpoint", "/runs/a/checkpoints/best.safetensors", "/runs/b/checkpoints/best.safetensors",
        "--data", "/d", "--split", "test", "--ensemble", "mean"]
    assert submission_args(summary, "a +flip", "/d")[-2:] == ["--tta", "flip"]
    path = row_predictions(summary, "a", "valset", "jpeg:50").path
    table = PredictionTable(load_predictions(path))
    scores = pd.read_parquet(folder / "scores.parquet")
    clean = scores[scores["perturbation"] == "none"]["a"].round(6).to_numpy()
    under = scores[scores["perturbation"] == "jpeg:50"]["a"].round(6).to_numpy()
    target = clean.astype(int) * 0 + (np.arange(40) % 2)
    flips = ((clean > 0.5) == (target == 1)) & ((under > 0.5) != (target == 1))
    assert flips.any()
    assert table.counts(0.5)["flips"] == int(flips.sum())


def text_of(renderable) -> str:
    out = io.StringIO()
    Console(file=out, width=300, color_system=None).print(renderable)
    return out.getvalue()


async def test_the_matrix_screen_colours_marks_the_best_and_opens_flips(tmp_path: Path) -> None:
    folder = fake_matrix(tmp_path / "m", tmp_path)
    (tmp_path / "runs").mkdir()
    app = FfdvApp(runs_dir=tmp_path / "runs", data_dir=None, images="none", model_names=lambda: MODEL_NAMES)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until_listed(pilot, app)
        app.push_screen(MatrixScreen(folder, "none"))
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 3, 10, "three rows")
        screen = app.screen
        table = screen.query_one(DataTable)
        assert [str(c.label) for c in table.ordered_columns] == ["model", *PERTURBATIONS]
        best = table.get_cell_at((0, 1))  # a, clean: the best of its column
        assert best.plain == "0.9000" and "bold" in str(best.style) and "on rgb" in str(best.style)
        other = table.get_cell_at((1, 1))
        assert "bold" not in str(other.style)
        dropped = table.get_cell_at((0, 3))  # a under jpeg:50: 0.74, 0.16 below clean
        assert dropped.plain == "0.7400 -0.160" and any("red" in str(span.style) for span in dropped.spans)
        assert screen.query_one("#matrix-chart").display
        # o: the highlighted row's per-image scores under the selected perturbation, with the flips filter
        screen.query_one("#matrix-perturbation").value = "jpeg:50"
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, PredictionsScreen), 10, "the predictions screen")
        predictions = app.screen
        await wait_until(pilot, lambda: predictions.table_data is not None, 10, "the predictions")
        expected = PredictionTable(load_predictions(folder / "predictions" / "a--valset--jpeg_50.csv")).counts(0.5)
        predictions.query_one("#filter").value = "flips"
        await wait_until(pilot, lambda: predictions.query_one(FrameTable).row_count == expected["flips"], 10,
                         "the flips")
        assert expected["flips"] > 0


def make_run(runs: Path, name: str, seed: int, data: Path) -> Path:
    from test_matrix import make_checkpoint

    run = make_checkpoint(runs / name, seed)
    for sidecar in run.glob("checkpoints/*.json"):
        content = json.loads(sidecar.read_text())
        content["config"] = {"data": {"root": str(data)}, "model": {"name": "resnet10t"}}
        sidecar.write_text(json.dumps(content))
    return run


@pytest.mark.slow
async def test_mark_two_checkpoints_run_a_matrix_and_reopen_it(tmp_path: Path, monkeypatch) -> None:
    from ffdv_tui.model_names import cache_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache_path().parent.mkdir(parents=True)
    cache_path().write_text(json.dumps(MODEL_NAMES))
    data = write_ffdi(tmp_path / "data", {"val": 16, "test": 6}, seed=2, size=40)
    runs = tmp_path / "runs"
    for i, name in enumerate(("r1", "r2")):
        make_run(runs, name, i, data)
    app = FfdvApp(runs_dir=runs, data_dir=data, images="none", model_names=lambda: MODEL_NAMES)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until_listed(pilot, app)
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, CheckpointsScreen), 10, "the checkpoints screen")
        screen = app.screen
        await wait_until(pilot, lambda: screen.query_one(FrameTable).row_count == 2, 10, "two checkpoints")
        keys = [e.key for e in screen.entries]
        for key in ("r1/epoch-001", "r2/epoch-001"):
            while screen.highlighted.key != key:
                await pilot.press("down" if keys.index(key) > keys.index(screen.highlighted.key) else "up")
            await pilot.press("space")
        assert list(screen.chosen) == ["r1/epoch-001", "r2/epoch-001"]
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixFormScreen), 10, "the matrix form")
        form = app.screen
        assert form.query_one("#matrix-data").value == str(data / "valset")  # the runs' own validation split
        checklist = form.query_one("#matrix-perturbations", SelectionList)
        checklist.deselect_all()
        checklist.select("jpeg:50")
        form.query_one("#matrix-custom").value = "jpg:3"
        await wait_until(pilot, lambda: "'jpg'" in text_of(form.query_one("#matrix-why", Static).content), 5,
                         "the spec's problem")
        form.query_one("#matrix-custom").value = "blur:1"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen), 240, "the matrix")
        result = app.screen
        await wait_until(pilot, lambda: result.query_one(DataTable).row_count == 3, 10, "three rows")
        assert result.models == ["r1/epoch-001", "r2/epoch-001", "ensemble-mean"]
        assert [str(c.label) for c in result.query_one(DataTable).ordered_columns] == ["model", "none", "jpeg:50",
                                                                                        "blur:1"]
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, 5, "back")
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixListScreen), 5, "the past matrices")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen)
                         and app.screen.query_one(DataTable).row_count == 3, 5, "the reopened matrix")
        # s on the ensemble's row: a submission of the mean of both checkpoints, on the dataset's test split
        reopened = app.screen
        await pilot.press("down", "down")
        assert reopened.row_model == "ensemble-mean"
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, JobScreen), 5, "the submission dialog")
        await pilot.press("ctrl+s")
        note = reopened.query_one("#matrix-note", Static)
        await wait_until(pilot, lambda: "submission written" in text_of(note.content)
                         or "failed" in text_of(note.content), 240, "the submission")
        assert "submission written" in text_of(note.content), text_of(note.content)
        written = pd.read_csv(reopened.summary.folder / "submissions" / "ensemble-mean-test.csv")
        assert list(written.columns) == ["img_name", "y_pred"] and len(written) == 6


def write_by_source(folder: Path) -> None:
    """by_source.csv as the engine writes it: each model's AUC per source and the mean, per perturbation."""
    records = []
    for p_index, perturbation in enumerate(PERTURBATIONS):
        for m_index, model in enumerate(["a", "b", "ensemble-mean"]):
            aucs = {"progan": 0.95 - 0.1 * m_index - 0.05 * p_index, "stylegan": 0.6 - 0.02 * p_index}
            for source, auc in [*aucs.items(), ("mean", sum(aucs.values()) / 2)]:
                records.append({"model": model, "dataset": "valset", "perturbation": perturbation, "source": source,
                                "count": 20 if source != "mean" else "", "auc": round(auc, 4), "accuracy": 0.5,
                                "ap": 0.5, "eer": 0.3})
    pd.DataFrame.from_records(records).to_csv(folder / "by_source.csv", index=False)


async def open_matrix_screen(pilot, app: FfdvApp, folder: Path) -> None:
    """The app listed, then the fake matrix's screen on top of it with its three models shown."""
    await wait_until_listed(pilot, app)
    app.push_screen(MatrixScreen(folder, "none"))
    await wait_until(pilot, lambda: app.screen.query_one("#matrix-table", DataTable).row_count == 3, 10, "3 rows")


async def test_b_shows_each_models_auc_per_source_under_the_selected_perturbation(tmp_path: Path) -> None:
    folder = fake_matrix(tmp_path / "m", tmp_path)
    write_by_source(folder)
    (tmp_path / "runs").mkdir()
    app = FfdvApp(runs_dir=tmp_path / "runs", data_dir=None, images="none", model_names=lambda: MODEL_NAMES)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_matrix_screen(pilot, app, folder)
        screen = app.screen
        screen.query_one("#matrix-perturbation").value = "none"
        sources = screen.query_one("#matrix-sources", DataTable)
        await pilot.press("b")
        await wait_until(pilot, lambda: sources.display and sources.row_count == 3, 10, "a row per model")
        assert [str(c.label) for c in sources.ordered_columns] == ["AUC under none", "progan", "stylegan", "mean"]
        assert [sources.get_cell_at((0, i)).plain for i in range(4)] == ["a", "0.9500", "0.6000", "0.7750"]
        assert not screen.query_one("#matrix-chart").display  # in its place
        screen.query_one("#matrix-perturbation").value = "jpeg:50"  # the table follows the perturbation
        await wait_until(pilot, lambda: sources.get_cell_at((0, 1)).plain == "0.8500", 10, "a's progan under jpeg:50")
        assert sources.get_cell_at((1, 2)).plain == "0.5600"
        await pilot.press("b")
        await wait_until(pilot, lambda: not sources.display and screen.query_one("#matrix-chart").display, 10,
                         "the chart again")


@pytest.mark.parametrize("damage, message", [
    (None, "No per-source numbers"),
    (("auc", "2.5"), "auc is '2.5'"),
    (("model", "zzz"), "model 'zzz' is not one of matrix.json's"),
    (("source", ""), "no source"),
])
async def test_b_on_a_matrix_without_or_with_damaged_per_source_numbers_says_why(tmp_path: Path, damage,
                                                                                 message) -> None:
    folder = fake_matrix(tmp_path / "m", tmp_path)
    if damage is not None:
        write_by_source(folder)
        frame = pd.read_csv(folder / "by_source.csv", keep_default_na=False, dtype=str)
        frame.loc[4, damage[0]] = damage[1]
        frame.to_csv(folder / "by_source.csv", index=False)
    (tmp_path / "runs").mkdir()
    app = FfdvApp(runs_dir=tmp_path / "runs", data_dir=None, images="none", model_names=lambda: MODEL_NAMES)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_matrix_screen(pilot, app, folder)
        await pilot.press("b")
        await wait_until(pilot, lambda: any(message in str(n.message) for n in app._notifications), 10, message)
        assert not app.screen.query_one("#matrix-sources", DataTable).display
        assert app.screen.query_one("#matrix-chart").display and isinstance(app.screen, MatrixScreen)
