"""The comparison screen and the runs list's marks, filter and sort, driven with Pilot on recorded runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import install_fixture_runs
from pilot_helpers import make_app, pick_run, rendered, wait_until, wait_until_listed
from sklearn.metrics import roc_curve
from textual.widgets import DataTable

from engine.contract.roc import read_predictions
from ffdv_tui.screens.compare import CompareScreen
from ffdv_tui.screens.filter import FilterScreen
from ffdv_tui.widgets.compare_plots import RocPlot, SeriesPlot
from ffdv_tui.widgets.run_list import RunList


async def open_comparison(pilot, app, names: list[str]) -> CompareScreen:
    for name in names:
        await pick_run(pilot, app, name)
        marked = len(app.main.marked)
        await pilot.press("space")
        await wait_until(pilot, lambda m=marked: len(app.main.marked) == m + 1, 10, f"{name} to be marked")
    await pilot.press("m")
    await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.loaded, 30, "the comparison")
    return app.screen


def table_rows(screen: CompareScreen) -> tuple[list[str], dict[str, dict[str, str]]]:
    table = screen.query_one("#compare-table", DataTable)
    columns = [str(c.value) for c in table.columns]
    rows = {}
    for key in table.rows:
        cells = [str(c.plain) if hasattr(c, "plain") else str(c) for c in table.get_row(key)]
        rows[str(key.value)] = dict(zip(columns, cells))
    return columns, rows


async def test_marked_runs_compared(tmp_path: Path):
    runs = install_fixture_runs(tmp_path / "runs")
    app = make_app(runs, images="none")
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until_listed(pilot, app)
        screen = await open_comparison(pilot, app, ["finished", "stopped"])
        for plot_id in ("#compare-train", "#compare-val", "#compare-auc"):  # one curve per run, in its colour
            series = screen.query_one(plot_id, SeriesPlot).series
            assert [s.name for s in series] == ["stopped", "finished"] or [s.name for s in series] == ["finished", "stopped"]
            assert len({s.colour for s in series}) == 2
            assert all(s.colour == screen.colours[s.name] for s in series)
        auc = {s.name: s for s in screen.query_one("#compare-auc", SeriesPlot).series}
        assert auc["finished"].xs == (1, 2, 3) and len(auc["stopped"].xs) == len(screen.comparison.run("stopped").epochs)
        columns, rows = table_rows(screen)
        assert columns[:4] == ["run", "status", "train.epochs", "train.seed"]  # only what differs
        assert not any(c.startswith(("optim.", "model.", "data.")) for c in columns)
        assert rows["finished"]["best Recall"] == "1.0000 @1"  # the best, not the last (0.9219 at epoch 3)
        assert rows["finished"]["best AUC"] == "0.8206 @3"
        # the ROC drawn is scikit-learn's ROC of the best validation's predictions
        rocs = dict(screen.rocs.curves)
        predictions = read_predictions(runs / "finished" / "predictions" / "epoch-003.csv")
        fpr, tpr, _ = roc_curve(predictions.targets, predictions.scores)
        np.testing.assert_array_equal(rocs["finished"].fpr, fpr)
        np.testing.assert_array_equal(rocs["finished"].tpr, tpr)
        drawn = {s.name: s for s in screen.query_one("#compare-roc", RocPlot).series}  # a few hundred points of it
        xs, ys = np.asarray(drawn["finished"].xs), np.asarray(drawn["finished"].ys)
        assert xs[0] == 0 and xs[1] == 1e-4 and xs[-1] == 1 and ys[-1] == 1
        for x, y in zip(xs, ys):
            assert y == tpr[fpr <= x].max()  # the best TPR at that FPR
        assert "1e-3" in rendered(screen.query_one("#compare-roc", RocPlot))


async def test_baseline_sort_and_x_axis(tmp_path: Path):
    runs = install_fixture_runs(tmp_path / "runs")
    app = make_app(runs, images="none")
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until_listed(pilot, app)
        await pilot.press("a")  # every run shown
        await wait_until(pilot, lambda: app.main.marked == {"finished", "stopped", "crashed"}, 10, "all marked")
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.loaded, 30, "comparison")
        screen = app.screen
        table = screen.query_one("#compare-table", DataTable)
        table.move_cursor(row=screen.row_names.index("stopped"), column=[c.value for c in table.columns].index("best AUC"))
        await pilot.press("b")
        await wait_until(pilot, lambda: screen.row_names[0] == "stopped", 10, "the baseline pinned first")
        _, rows = table_rows(screen)
        assert rows["finished"]["best AUC"] == "+0.1357 @3" and rows["stopped"]["run"] == "◆ stopped"
        assert rows["finished"]["train.seed"] == "42" and rows["crashed"]["train.epochs"] == "3"
        await pilot.press("s")  # by best AUC, highest first; the baseline stays on top
        await wait_until(pilot, lambda: screen.sort == "best AUC", 10, "sorted")
        assert screen.row_names == ("stopped", "finished", "crashed")
        await pilot.press("s")
        await wait_until(pilot, lambda: not screen.descending, 10, "sorted the other way")
        assert screen.row_names == ("stopped", "crashed", "finished")
        train = screen.query_one("#compare-train", SeriesPlot)
        assert train.series[0].xs[0] == 1
        await pilot.press("x")
        await wait_until(pilot, lambda: train.xlabel == "images seen", 10, "images on the x axis")
        assert {s.xs[0] for s in train.series} == {384}  # one epoch of 384 training images


async def test_filter_and_sort_the_runs_list(tmp_path: Path):
    runs = install_fixture_runs(tmp_path / "runs")
    for i in range(200):  # instant with 200 runs: the list follows each key
        shutil.copytree(runs / "stopped", runs / f"sweep-{i:03d}")
    app = make_app(runs, images="none")
    async with app.run_test(size=(120, 40)) as pilot:
        run_list = app.query_one(RunList)
        await wait_until(pilot, lambda: len(run_list.names) == 203, 60, "203 runs listed")
        await pilot.press("slash")
        await wait_until(pilot, lambda: isinstance(app.screen, FilterScreen), 10, "the filter")
        await pilot.press(*"auc>0.8")
        await wait_until(pilot, lambda: run_list.names == ["finished"], 10, "only the run with AUC > 0.8")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, FilterScreen), 10, "the filter closed")
        assert app.main.filter_text == "auc>0.8" and "1/203" in str(run_list.border_title)
        shutil.copytree(runs / "finished", runs / "finished-again")  # a run that appears while the filter is on
        await wait_until(pilot, lambda: set(run_list.names) == {"finished", "finished-again"}, 30, "the new run shown")
        await wait_until(pilot, lambda: "2/204" in str(run_list.border_title), 10, "the count following")
        await pilot.press("slash")
        await wait_until(pilot, lambda: isinstance(app.screen, FilterScreen), 10, "the filter again")
        await pilot.press(*["backspace"] * 7, *"status=crash*")
        await wait_until(pilot, lambda: run_list.names == ["crashed"], 10, "the crashed run")
        await pilot.press("escape")  # the filter as it was
        await wait_until(pilot, lambda: len(run_list.names) == 2 and app.main.filter_text == "auc>0.8", 10,
                         "the filter before")
        app.main.set_filter("model=resnet* seed=4")
        await wait_until(pilot, lambda: len(run_list.names) == 201, 10, "seed 4: stopped and its copies")
        assert app.main.set_filter("auc>high") is not None and len(run_list.names) == 201  # unreadable: kept
        app.main.set_filter("")
        await pilot.press("o")  # best AUC first
        await wait_until(pilot, lambda: set(run_list.names[:2]) == {"finished", "finished-again"}
                         and app.main.sort == "best AUC", 10, "by AUC")
        await pilot.press("o")
        await wait_until(pilot, lambda: app.main.sort == "name", 10, "by name")
        assert run_list.names[:3] == ["crashed", "finished", "finished-again"]


async def test_compare_needs_two_runs(tmp_path: Path):
    runs = install_fixture_runs(tmp_path / "runs")
    app = make_app(runs, images="none")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until_listed(pilot, app)
        await pilot.press("m")
        await wait_until(pilot, lambda: any("Mark two runs" in str(n.message) for n in app._notifications), 10,
                         "the hint")
        assert not isinstance(app.screen, CompareScreen)


async def test_a_timm_output_folder_is_listed_and_compared(tmp_path: Path):
    from test_compare import write_timm_folder

    from engine.contract.status import RunStatus

    runs = install_fixture_runs(tmp_path / "runs")
    write_timm_folder(runs / "timm-resnet")
    app = make_app(runs, images="none")
    async with app.run_test(size=(160, 50)) as pilot:
        run_list = app.query_one(RunList)
        await wait_until(pilot, lambda: "timm-resnet" in run_list.names, 30, "the timm folder listed")
        timm = app.main.runs["timm-resnet"]
        assert timm.status == RunStatus.FINISHED and timm.model == "resnet10t"
        assert [v.epoch for v in timm.validations] == [1, 2, 3] and timm.best_metric == "accuracy"
        assert timm.best_epoch == 2 and timm.best("accuracy") == pytest.approx(0.7)  # best, not last (0.65)
        app.main.set_filter("model=resnet10t optimizer=sgd")
        await wait_until(pilot, lambda: run_list.names == ["timm-resnet"], 10, "the filter on timm's settings")
        app.main.set_filter("")
        screen = await open_comparison(pilot, app, ["timm-resnet", "finished"])
        _, rows = table_rows(screen)
        assert rows["timm-resnet"]["best Acc"] == "0.7000 @2" and rows["timm-resnet"]["status"] == "finished"
        assert [s.name for s in screen.query_one("#compare-train", SeriesPlot).series] == ["timm-resnet", "finished"] \
            or len(screen.query_one("#compare-train", SeriesPlot).series) == 2
        assert dict(screen.rocs.left_out) == {"timm-resnet": "no per-image predictions"}


async def test_names_and_settings_are_data_never_markup(tmp_path: Path):
    runs = install_fixture_runs(tmp_path / "runs")
    evil = "[red]evil[b]x"
    shutil.copytree(runs / "finished", runs / evil)
    events = runs / evil / "events.jsonl"  # the settings the engine ran with, as its first event says
    events.write_text(events.read_text().replace('"run":{"runs"', '"extra":{"[b]key[/b]":"[link=x]v[/link]\\u001b[2J"},'
                                                                  '"run":{"runs"', 1))
    app = make_app(runs, images="none")
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until_listed(pilot, app)
        screen = await open_comparison(pilot, app, [evil, "finished"])
        columns, rows = table_rows(screen)
        assert "extra.[b]key[/b]" in columns
        row = next(r for name, r in rows.items() if name == evil)
        assert row["run"] == evil
        assert row["extra.[b]key[/b]"].startswith("[link=x]v[/link]") and "\x1b" not in row["extra.[b]key[/b]"]
        assert evil in rendered(screen.query_one("#compare-legend"))
