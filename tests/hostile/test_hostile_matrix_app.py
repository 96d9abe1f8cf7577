"""The app stays up on damaged evaluation matrices and hostile names, and a crash exits non-zero (issue 24).

Each test leaves what an unlucky user or an attacker would (a matrix.json or matrix.csv edited
or cut short, a scores.parquet with repeated rows, a dataset named with markup, a perturbation
spec that cannot be a number or a suite that names itself), drives the app the way a person
would (k, l, Enter; o; the form's "Also" field) and checks that the app is still running and
says what is wrong, or shows the name as the literal text it is.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from conftest import MODEL_NAMES, REPO
from pilot_helpers import rendered, screen_text, wait_until, wait_until_listed
from test_tui_matrix import fake_matrix
from textual.widgets import DataTable, Select, Static

from engine.contract.matrixstore import MatrixStoreError, list_matrices, open_matrix, read_summary, row_predictions
from ffdv_tui.app import FfdvApp
from ffdv_tui.screens.checkpoints import CheckpointsScreen
from ffdv_tui.screens.matrix import MatrixScreen
from ffdv_tui.screens.matrix_form import MatrixFormScreen
from ffdv_tui.screens.matrix_list import MatrixListScreen
from ffdv_tui.screens.predictions import PredictionsScreen
from ffdv_tui.widgets.frame_table import FrameTable

GOOD_SIDECAR = {"epoch": 1, "step": 10, "metrics": {"auc": 0.75}, "model": "resnet10t", "img_size": 64}


def run_with_matrix(tmp_path: Path) -> tuple[Path, Path]:
    """A run with one checkpoint, and one finished matrix in its evaluations/ folder."""
    runs = tmp_path / "runs"
    checkpoints = runs / "r1" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (runs / "r1" / "config.toml").write_text("")
    (checkpoints / "epoch-001.safetensors").write_bytes(b"\0" * 64)
    (checkpoints / "epoch-001.json").write_text(json.dumps(GOOD_SIDECAR))
    return runs, fake_matrix(runs / "r1" / "evaluations" / "m", tmp_path)


def edit_json(folder: Path, change: Callable[[dict], None]) -> None:
    data = json.loads((folder / "matrix.json").read_text())
    change(data)
    (folder / "matrix.json").write_text(json.dumps(data))  # NaN is written as NaN, as a hand edit would


def edit_csv(folder: Path, change: Callable[[pd.DataFrame], pd.DataFrame | None]) -> None:
    frame = pd.read_csv(folder / "matrix.csv", dtype=str, keep_default_na=False)
    frame = change(frame)
    frame.to_csv(folder / "matrix.csv", index=False)


def set_cell(column: str, value: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[1, column] = value
        return frame
    return change


def settings(**fields) -> Callable[[dict], None]:
    return lambda data: data["settings"].update(fields)


def damage_time(value: float) -> Callable[[dict], None]:
    return lambda data: data.update(time=value)


# (what is damaged, how, words of the problem the app must show)
DAMAGED = {
    "time 1e300": (damage_time(1e300), None, '"time" is not a time'),
    "time NaN": (damage_time(math.nan), None, '"time" is not a time'),
    "time 10**400": (damage_time(10**400), None, '"time" is not a time'),
    "checkpoints of names": (settings(checkpoints=["x"]), None, "settings.checkpoints[0] is not an object"),
    "no datasets": (settings(datasets=[]), None, "settings.datasets is not a non-empty list"),
    "other columns": (None, lambda f: f.rename(columns={"auc": "AUC", "drop_auc": "dropped"}), "no auc, drop_auc column"),
    "a missing column": (None, lambda f: f.drop(columns=["images"]), "no images column"),
    "AUC abc": (None, set_cell("auc", "abc"), "line 3: auc is 'abc'"),
    "AUC inf": (None, set_cell("auc", "inf"), "line 3: auc is 'inf'"),
    "AUC 7": (None, set_cell("auc", "7"), "line 3: auc is '7'"),
    "a repeated cell": (None, lambda f: pd.concat([f, f.iloc[[0]]]), "line 14 repeats the cell of line 2"),
    "an unknown dataset": (None, set_cell("dataset", "other"), "dataset 'other' is not one of"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_the_store_refuses_a_damaged_matrix_and_lists_it_with_its_problem(tmp_path: Path, case: str) -> None:
    runs, folder = run_with_matrix(tmp_path)
    json_change, csv_change, words = DAMAGED[case]
    if json_change:
        edit_json(folder, json_change)
    if csv_change:
        edit_csv(folder, csv_change)
    with pytest.raises(MatrixStoreError, match="Fix: ") as caught:
        open_matrix(folder)
    assert words in str(caught.value) and ("matrix.json" if json_change else "matrix.csv") in str(caught.value)
    [listed] = list_matrices([runs / "r1"])
    assert listed.problem is not None and words in listed.title and listed.folder == folder


async def open_past_matrix(pilot, app: FfdvApp) -> MatrixScreen:
    """k, l, Enter: the checkpoints screen, the past matrices, the first one."""
    await wait_until_listed(pilot, app)
    await pilot.press("k")
    await wait_until(pilot, lambda: isinstance(app.screen, CheckpointsScreen)
                     and app.screen.query_one(FrameTable).row_count == 1, 30, "the checkpoint")
    await pilot.press("l")
    await wait_until(pilot, lambda: isinstance(app.screen, MatrixListScreen), 30, "the past matrices")
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen), 30, "the matrix screen")
    return app.screen


def app_on(runs: Path) -> FfdvApp:
    return FfdvApp(runs_dir=runs, data_dir=None, images="none", model_names=lambda: MODEL_NAMES)


@pytest.mark.parametrize("case", ["time 1e300", "time NaN", "checkpoints of names", "no datasets", "other columns",
                                  "AUC abc", "AUC inf"])
async def test_opening_a_damaged_matrix_shows_its_problem_and_the_app_stays_up(tmp_path: Path, case: str) -> None:
    runs, folder = run_with_matrix(tmp_path)
    json_change, csv_change, words = DAMAGED[case]
    if json_change:
        edit_json(folder, json_change)
    if csv_change:
        edit_csv(folder, csv_change)
    app = app_on(runs)
    async with app.run_test(size=(200, 50)) as pilot:
        await wait_until_listed(pilot, app)
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, CheckpointsScreen)
                         and app.screen.query_one(FrameTable).row_count == 1, 30, "the checkpoint")
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixListScreen), 30, "the past matrices")
        listed = " ".join(screen_text(app).split())
        assert f"m: damaged: {'matrix.json' if json_change else 'matrix.csv'}: {words}" in listed, listed
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen), 30, "the matrix screen")
        note = app.screen.query_one("#matrix-note", Static)
        await wait_until(pilot, lambda: words in str(note.content), 30, "the problem under the matrix")
        assert "damaged" in str(note.content) and app.is_running


@pytest.mark.parametrize("dataset", ["[reverse]vset", "v[/]set"])
async def test_a_dataset_named_with_markup_is_shown_as_its_name(tmp_path: Path, dataset: str) -> None:
    runs, folder = run_with_matrix(tmp_path)
    edit_json(folder, lambda data: data["settings"]["datasets"][0].update(key=dataset))
    edit_csv(folder, lambda frame: frame.assign(dataset=dataset))
    scores = pd.read_parquet(folder / "scores.parquet")
    scores.assign(dataset=dataset).to_parquet(folder / "scores.parquet", index=False)
    app = app_on(runs)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await open_past_matrix(pilot, app)
        await wait_until(pilot, lambda: screen.query_one(DataTable).row_count == 3, 30, "the three rows")
        select = screen.query_one("#matrix-dataset", Select)
        assert select.value == dataset
        await wait_until(pilot, lambda: dataset in rendered(select.query_one("#label")), 30,
                         "the dataset's name, literally, in its select")
        assert app.is_running


async def test_a_truncated_matrix_csv_shows_the_partial_table_with_a_warning(tmp_path: Path) -> None:
    runs, folder = run_with_matrix(tmp_path)
    text = (folder / "matrix.csv").read_text()
    (folder / "matrix.csv").write_text(text[:int(len(text) * 0.6)])  # cut in the middle of a line
    whole_lines = text[:int(len(text) * 0.6)].count("\n") - 1  # the header and the cut line are not cells
    matrix = open_matrix(folder)
    assert len(matrix.frame) == whole_lines and len(matrix.warnings) == 2
    assert "cut short" in matrix.warnings[0] and f"{whole_lines} of 12 cells" in matrix.warnings[1]
    app = app_on(runs)
    async with app.run_test(size=(200, 50)) as pilot:
        await wait_until_listed(pilot, app)
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, CheckpointsScreen)
                         and app.screen.query_one(FrameTable).row_count == 1, 30, "the checkpoint")
        await pilot.press("l")
        await wait_until(pilot, lambda: "(2 warnings)" in screen_text(app), 30, "the list's warning count")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen), 30, "the matrix screen")
        note = app.screen.query_one("#matrix-note", Static)
        await wait_until(pilot, lambda: f"a partial table, {whole_lines} of 12 cells" in str(note.content), 30,
                         "the warning under the table")
        assert app.screen.query_one(DataTable).row_count == 3 and app.is_running


def test_repeated_rows_of_scores_are_left_out_with_a_warning(tmp_path: Path) -> None:
    _, folder = run_with_matrix(tmp_path)
    scores = pd.read_parquet(folder / "scores.parquet")
    pd.concat([scores, scores]).to_parquet(folder / "scores.parquet", index=False)
    result = row_predictions(read_summary(folder), "a", "valset", "jpeg:50")
    assert len(pd.read_csv(result.path)) == 40
    assert result.warnings == ["scores.parquet: 160 repeated rows of 'valset' left out"]


def test_repeated_images_with_different_scores_are_refused(tmp_path: Path) -> None:
    _, folder = run_with_matrix(tmp_path)
    scores = pd.read_parquet(folder / "scores.parquet")
    other = scores.assign(a=1 - scores["a"])
    pd.concat([scores, other]).to_parquet(folder / "scores.parquet", index=False)
    with pytest.raises(MatrixStoreError, match="appears twice under 'none' with different scores"):
        row_predictions(read_summary(folder), "a", "valset", "jpeg:50")


async def test_a_scores_file_with_repeated_rows_opens_as_its_own_images(tmp_path: Path) -> None:
    runs, folder = run_with_matrix(tmp_path)
    scores = pd.read_parquet(folder / "scores.parquet")
    pd.concat([scores, scores]).to_parquet(folder / "scores.parquet", index=False)
    app = app_on(runs)
    async with app.run_test(size=(200, 50), notifications=True) as pilot:
        screen = await open_past_matrix(pilot, app)
        await wait_until(pilot, lambda: screen.query_one(DataTable).row_count == 3, 30, "the three rows")
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, PredictionsScreen), 30, "the per-image scores")
        predictions = app.screen
        await wait_until(pilot, lambda: predictions.table_data is not None, 30, "the predictions")
        assert predictions.query_one(FrameTable).row_count == 40
        assert any("160 repeated rows" in n.message for n in app._notifications)


# ---------------------------------------------------------------- the matrix form's "Also" field


@pytest.mark.parametrize("spec", ["jpeg:inf", "jpeg:nan", "jpeg:-inf", "suite.toml"])
async def test_a_spec_that_cannot_be_parsed_is_shown_beside_the_field(tmp_path: Path, spec: str) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(f'perturbations = ["{suite}"]\n')  # names itself
    typed = str(suite) if spec == "suite.toml" else spec
    (tmp_path / "runs").mkdir()
    app = app_on(tmp_path / "runs")
    async with app.run_test(size=(200, 50)) as pilot:
        await wait_until_listed(pilot, app)
        app.push_screen(MatrixFormScreen("a matrix", [str(tmp_path)], several=False))
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixFormScreen)
                         and app.screen.query_one("#matrix-custom").is_mounted, 30, "the form")
        form = app.screen
        form.query_one("#matrix-custom").value = typed
        why = form.query_one("#matrix-why", Static)
        await wait_until(pilot, lambda: str(why.content).strip() != "", 30, "the spec's problem")
        await pilot.press("ctrl+s")
        assert app.screen is form and app.is_running  # not started, still there


# ---------------------------------------------------------------- a crash is a failure


def test_an_app_that_ends_on_an_exception_exits_1_with_its_traceback(tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text(
        "import sys\n"
        "from textual.app import App\n"
        "import ffdv_tui.__main__ as entry\n"
        "from ffdv_tui.app import FfdvApp\n"
        "def crash(self):\n"
        "    raise RuntimeError('an injected failure')\n"
        "FfdvApp.on_mount = crash\n"
        "FfdvApp.run = lambda self, **kwargs: App.run(self, headless=True)\n"
        "sys.exit(entry.main(sys.argv[1:]))\n")
    (tmp_path / "runs").mkdir()
    done = subprocess.run([sys.executable, str(script), "--runs", str(tmp_path / "runs"), "--images", "none"],
                          capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "TERM": "xterm"})
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert "an injected failure" in done.stdout + done.stderr


# ---------------------------------------------------------------- what the engine writes is never refused


@pytest.mark.slow
def test_the_checked_reader_takes_every_row_kind_the_engine_writes(tmp_path: Path) -> None:
    from conftest import write_ffdi
    from test_matrix import make_checkpoint, run_matrix

    data = write_ffdi(tmp_path / "data", {"val": 12}, seed=3, size=40)
    runs = [make_checkpoint(tmp_path / "runs" / name, seed=i) for i, name in enumerate("ab")]
    out = tmp_path / "m"
    assert run_matrix(["--checkpoint", *map(str, runs), "--data", str(data), "--perturb", "jpeg:50,blur:1",
                       "--ensemble", "mean,rank,soup,greedy", "--tta", "flip", "--out", str(out)]) == 0
    matrix = open_matrix(out)
    assert matrix.warnings == [] and matrix.summary.problem is None
    assert len(matrix.frame) == len(matrix.summary.rows) * 3 and "greedy-soup" in matrix.summary.rows
    for row in matrix.summary.rows:
        scores = row_predictions(matrix.summary, row, "valset", "blur:1")
        assert scores.warnings == [] and len(pd.read_csv(scores.path)) == 12


def test_the_form_boundary_names_a_dataset_path_that_cannot_exist() -> None:
    from ffdv_tui.screens.matrix_form import missing_folder, spec_problem

    assert missing_folder(["~nobody-here-at-all/val"]) == "~nobody-here-at-all/val"
    assert missing_folder(["a\0b"]) == "a\0b"
    assert missing_folder([str(REPO)]) is None
    assert spec_problem("") is None and spec_problem("jpeg:60") is None


def test_scores_that_are_not_probabilities_or_names_are_refused(tmp_path: Path) -> None:
    _, folder = run_with_matrix(tmp_path)
    scores = pd.read_parquet(folder / "scores.parquet")
    summary = read_summary(folder)
    scores.assign(a=scores["a"] * 3).to_parquet(folder / "scores.parquet", index=False)
    with pytest.raises(MatrixStoreError, match="not probabilities from 0 to 1"):
        row_predictions(summary, "a", "valset", "jpeg:50")
    scores.assign(img_name=range(len(scores))).to_parquet(folder / "scores.parquet", index=False)
    with pytest.raises(MatrixStoreError, match="img_name holds something other than names"):
        row_predictions(summary, "a", "valset", "jpeg:50")
    (folder / "scores.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(MatrixStoreError, match="cannot read 'a' from it"):
        row_predictions(summary, "a", "valset", "jpeg:50")
