"""Issue 19: the app at the sizes people have (80x24, 120x36), one Pilot test per item.

Each test drives the recorded runs of tests/fixtures/runs (stand-in weights beside their
checkpoint sidecars) and waits for the exact change an action causes.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest
from conftest import install_fixture_runs, install_fixture_weights
from pilot_helpers import make_app, pick_run, screen_lines, static_text, wait_for_runs, wait_until
from test_leakage import photos  # noqa: F401 (a fixture)
from textual.widgets import Input, Select, Static

from ffdv_tui.screens.checkpoints import CheckpointsScreen
from ffdv_tui.screens.predictions import PredictionsScreen, run_source
from ffdv_tui.widgets.frame_table import FrameTable

FIXTURE_NAMES = {"crashed", "finished", "stopped"}


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    runs = install_fixture_runs(tmp_path / "runs")
    install_fixture_weights(runs)
    return runs


def table_lines(table: FrameTable) -> list[str]:
    """The table's lines inside its frame: the header first."""
    lines = ["".join(segment.text for segment in strip) for strip in table.render_lines(table.region.reset_offset)]
    return [line[1:-1] for line in lines[1:-1]]


async def open_checkpoints(pilot, app) -> CheckpointsScreen:
    await wait_for_runs(pilot, app, FIXTURE_NAMES)
    await pilot.press("k")
    await wait_until(pilot, lambda: isinstance(app.screen, CheckpointsScreen)
                     and app.screen.query_one(FrameTable).row_count == 6, 30, "the checkpoints")
    return app.screen


# ---------------------------------------------------------------- 2. the checkpoints table


async def test_checkpoints_table_shows_auc_at_80_columns_without_an_empty_problem_column(runs: Path) -> None:
    app = make_app(runs)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_checkpoints(pilot, app)
        table = screen.query_one(FrameTable)
        await wait_until(pilot, lambda: "AUC" in table_lines(table)[0], 30, "the AUC column in view")
        lines = table_lines(table)
        assert "problem" not in lines[0]
        assert "epoch-003" in "\n".join(lines) and "0.8206" in "\n".join(lines)  # finished/epoch-003's AUC


async def test_marked_rows_are_marked_in_the_table(runs: Path) -> None:
    app = make_app(runs)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_checkpoints(pilot, app)
        table = screen.query_one(FrameTable)
        await pilot.press("down", "m")  # finished/epoch-001: compare
        await wait_until(pilot, lambda: table_lines(table)[2].startswith("A"), 30, "the compare mark")
        await pilot.press("down", "space")  # finished/epoch-002: for a matrix
        await wait_until(pilot, lambda: table_lines(table)[3].startswith("●"), 30, "the matrix mark")
        await pilot.press("space")
        await wait_until(pilot, lambda: not table_lines(table)[3].startswith("●"), 30, "the matrix mark cleared")
        assert table_lines(table)[2].startswith("A")


# ---------------------------------------------------------------- 4. inputs that let go, settings kept


async def open_predictions(pilot, app, run: str = "finished") -> PredictionsScreen:
    await wait_for_runs(pilot, app, FIXTURE_NAMES)
    await pick_run(pilot, app, run)
    await pilot.press("v")
    await wait_until(pilot, lambda: isinstance(app.screen, PredictionsScreen), 30, "the predictions screen")
    screen = app.screen
    await wait_until(pilot, lambda: screen.query_one(FrameTable).row_count > 0, 30, "the predictions")
    return screen


async def test_enter_down_and_escape_leave_the_search_for_the_table_and_escape_again_leaves(runs: Path) -> None:
    app = make_app(runs, images="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_predictions(pilot, app)
        table, search = screen.query_one(FrameTable), screen.query_one("#search", Input)
        for leave in ("enter", "down", "escape"):
            await pilot.press("slash")
            await wait_until(pilot, lambda: search.has_focus, 30, "the search box")
            await pilot.press(leave)
            await wait_until(pilot, lambda: table.has_focus, 30, f"{leave} to reach the table")
            assert app.screen is screen
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.main, 30, "the second escape to leave the screen")


async def test_filter_sort_and_threshold_survive_closing_and_reopening_per_run(runs: Path) -> None:
    app = make_app(runs, images="none")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_predictions(pilot, app)
        screen.query_one("#threshold", Input).value = "0.7"
        screen.query_one("#sort", Select).value = "wrong"
        await pilot.press("f")
        await wait_until(pilot, lambda: screen.query_one("#filter", Select).value != "all", 30, "the next filter")
        kept = screen.query_one("#filter", Select).value
        await wait_until(pilot, lambda: app.kept_settings.get(screen.settings_key, {}).get("filter") == kept, 30,
                         "the settings kept")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.main, 30, "the workbench")
        screen = await open_predictions(pilot, app)
        assert screen.query_one("#threshold", Input).value == "0.7"
        assert screen.query_one("#sort", Select).value == "wrong"
        assert screen.query_one("#filter", Select).value == kept
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.main, 30, "the workbench")
        other = await open_predictions(pilot, app, "stopped")  # another run: its own settings
        assert other.query_one("#threshold", Input).value == "0.5"
        assert other.query_one("#filter", Select).value == "all"


# ---------------------------------------------------------------- 7. a new sort or filter starts at the top


async def test_a_new_sort_starts_at_the_top(runs: Path) -> None:
    app = make_app(runs, images="none")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_predictions(pilot, app)
        table = screen.query_one(FrameTable)
        await pilot.press("end")
        await wait_until(pilot, lambda: table.cursor_row == table.row_count - 1, 30, "the last row")
        first = table.index_at(0)
        screen.query_one("#sort", Select).value = "wrong"
        await wait_until(pilot, lambda: table.index_at(0) != first, 30, "the new order")
        assert table.cursor_row == 0
        await pilot.press("end")
        await wait_until(pilot, lambda: table.cursor_row == table.row_count - 1, 30, "the last row")
        await pilot.press("f")
        await wait_until(pilot, lambda: table.cursor_row == 0, 30, "the filtered rows from the top")


# ---------------------------------------------------------------- 5. screens that follow the run


async def test_predictions_appear_when_the_first_validation_is_written(runs: Path, tmp_path: Path) -> None:
    folder = runs / "stopped" / "predictions"
    saved = tmp_path / "saved"
    folder.rename(saved)
    app = make_app(runs, images="none")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        await pick_run(pilot, app, "stopped")
        await pilot.press("v")
        await wait_until(pilot, lambda: isinstance(app.screen, PredictionsScreen), 30, "the predictions screen")
        screen = app.screen
        metrics = screen.query_one("#pred-metrics", Static)
        await wait_until(pilot, lambda: "No predictions yet" in static_text(metrics), 30, "the empty screen")
        saved.rename(folder)  # the validation of epoch 1 is written
        await wait_until(pilot, lambda: screen.query_one(FrameTable).row_count == 128, 30, "epoch 1's predictions")
        assert "No predictions yet" not in static_text(metrics)
        assert screen.query_one("#epoch", Select).value == 1


async def test_the_header_names_the_screen_below_again_when_one_above_closes(runs: Path) -> None:
    app = make_app(runs, images="none")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, CheckpointsScreen)
                         and app.screen.query_one(FrameTable).row_count == 6, 30, "the checkpoints")
        await wait_until(pilot, lambda: app.sub_title.startswith("checkpoints"), 30, "the checkpoints title")
        app.screen.last_evaluation = run_source(runs / "finished", "")  # as if an evaluation (e) had finished
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, PredictionsScreen), 30, "the predictions screen")
        await wait_until(pilot, lambda: app.sub_title.startswith("predictions"), 30, "the predictions title")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, CheckpointsScreen), 30, "the checkpoints again")
        await wait_until(pilot, lambda: app.sub_title.startswith("checkpoints"), 30, "the checkpoints title again")


# ---------------------------------------------------------------- 6. keys that surprise


async def test_r_on_a_finished_run_asks_before_starting_its_engine(runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ffdv_tui.screens.confirm import ConfirmScreen

    launched = []
    def resume_run(paths, **kwargs):  # what the engine's start would say, without an engine
        launched.append(paths.root.name)
        return types.SimpleNamespace(from_checkpoint=True, paths=paths)

    monkeypatch.setattr("engine.contract.runstart.resume_run", resume_run)
    app = make_app(runs, images="none")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        await pick_run(pilot, app, "finished")
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30, "the question")
        assert "finished" in static_text(app.screen.query_one("#question", Static))
        await pilot.press("n")
        await wait_until(pilot, lambda: app.screen is app.main, 30, "the workbench")
        assert launched == []
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30, "the question")
        await pilot.press("y")
        await wait_until(pilot, lambda: launched == ["finished"], 30, "the engine started")


async def test_no_key_of_the_checkpoints_screen_pauses_a_run_one_escape_later(runs: Path) -> None:
    """p pauses the selected run on the workbench without asking: no other screen uses it (s and r ask there)."""
    from ffdv_tui.screens.main import MainScreen

    app = make_app(runs, images="none")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_checkpoints(pilot, app)
        keys = {binding.key for binding in screen.BINDINGS}
        assert "p" not in keys and "l" in keys
        run_changing = {b.key for b in MainScreen.BINDINGS if b.action in ("pause_resume", "checkpoint")}
        assert not run_changing & keys
        await pilot.press("l")
        await wait_until(pilot, lambda: any("No evaluation matrix" in str(n.message) for n in app._notifications),
                         30, "the past matrices' answer")


# ---------------------------------------------------------------- 3. the palette is the map of the app


async def test_the_palette_knows_every_screens_commands_with_their_keys_and_one_quit(runs: Path) -> None:
    from ffdv_tui.screens.dataset import DatasetScreen

    app = make_app(runs, images="none")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        commands = {c.title: c for c in app.get_system_commands(app.main)}
        titles = list(commands)
        assert [t for t in titles if "Quit" in t] == ["Quit"]
        assert "q" in commands["Quit"].help.split(" · ")[0].split()  # "key ^q / q": both ask first
        for title, key, screen in (("Leakage audit (dataset)", "l", "dataset"),
                                   ("Matrix of the picked checkpoints (checkpoints)", "x", "checkpoints"),
                                   ("Threshold (predictions)", "t", "predictions")):
            assert title in commands, titles
            assert f"key {key} on the {screen} screen" in commands[title].help
        assert "key n" in commands["New run"].help
        commands["Leakage audit (dataset)"].callback()
        await wait_until(pilot, lambda: isinstance(app.screen, DatasetScreen), 30, "the dataset screen")


# ---------------------------------------------------------------- 8. the keys screen


async def test_the_keys_screen_says_how_to_close_first_and_groups_by_what_a_person_does(runs: Path) -> None:
    from ffdv_tui.screens.help import HelpScreen, KeysList

    app = make_app(runs, images="none")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), 30, "the keys screen")
        assert "closes this list" in static_text(app.screen.query_one("#keys-close", Static))
        first = [line.strip() for line in screen_lines(app) if line.strip(" █▀▄")]
        assert "closes this list" in first[0]
        text = "\n".join(line.plain for line in app.screen.query_one(KeysList).lines(76))
        for noise in ("RunList", "FrameTable", "DataTable", "Scroll Left", "Copy selected text", "Focus Next"):
            assert noise not in text
        assert "On this screen" in text and "Moving in the run list" in text
        assert text.count("Quit") == 1 + text.count("Quit;")  # one Quit row (q / ^q), besides its help
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.main, 30, "the workbench")


# ---------------------------------------------------------------- 9. the leakage view's keys


async def test_cancel_scan_is_offered_only_while_a_scan_runs(runs: Path) -> None:
    from ffdv_tui.screens.dataset import DatasetScreen
    from ffdv_tui.widgets.key_bar import KeyBar

    app = make_app(runs, images="none")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, DatasetScreen), 30, "the dataset screen")
        screen = app.screen
        await wait_until(pilot, lambda: "scan done" in static_text(screen.query_one("#scan-status", Static)), 60,
                         "the scan to finish")
        bar = screen.query_one(KeyBar)
        await wait_until(pilot, lambda: "cancel_scan" not in {k.action for k in bar.keys}, 30, "x gone from the bar")
        screen._show_progress()  # what r (rescan) and l (audit) do first
        await wait_until(pilot, lambda: "cancel_scan" in {k.action for k in bar.keys}, 30, "x in the bar")


# ---------------------------------------------------------------- 10. the small things


def test_the_progress_readout_gives_up_the_lr_before_the_memory_is_cut() -> None:
    from dataclasses import replace

    from engine.contract.protocol import Heartbeat
    from ffdv_tui.widgets.run_progress import readout

    beat = Heartbeat(memory_used=int(1.1e9), memory_total=int(23.5e9), utilization=87.0)
    snapshot = replace(_snapshot(), images_per_sec=123.0, lr=7.21e-4, duration=95.0, heartbeat=beat)
    wide = readout(snapshot, 200)
    assert "lr 7.21e-04" in wide and "mem 1.0 GB / 21.9 GB" in wide
    narrow = readout(snapshot, 50)
    assert "lr" not in narrow and "mem 1.0 GB" in narrow and len(narrow) <= 50


def _snapshot():
    from engine.contract.runstate import RunState
    from engine.contract.runstore import RunPaths
    from engine.contract.status import RunStatus
    from ffdv_tui.run_snapshot import RunSnapshot

    return RunSnapshot.of("r", RunPaths(Path("r")), RunState(), RunStatus.RUNNING, None, [])


def test_plurals_and_hints_read_right() -> None:
    from engine.contract.fmt import fmt_count
    from ffdv_tui.screens.new_run import _placeholder, _unknown_model

    assert fmt_count(1, "epoch") == "1 epoch" and fmt_count(3, "checkpoint") == "3 checkpoints"
    assert _unknown_model("test_res", {"test_resnet"}) == "not a timm model; did you mean test_resnet?"
    field = type("F", (), {"name": "pretrained"})()
    assert len(_placeholder(field)) <= 24  # whole in the form's field at 80 columns


async def test_the_new_run_form_remembers_the_last_run_started(runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ffdv_tui.screens.new_run import NewRunScreen

    monkeypatch.setattr("engine.contract.runstart.launch_run", lambda paths, **kwargs: None)
    app = make_app(runs, images="none")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        config = app.form_defaults()
        assert config.data.img_size != 96
        config.data.img_size, config.train.epochs, config.run.name = 96, 3, "first"
        app.start_run(config)  # what the form's Start does (without an engine)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, NewRunScreen), 30, "the form")
        form = app.screen
        assert form.query_one("#img_size", Input).value == "96"
        assert form.query_one("#epochs", Input).value == "3"
        assert form.query_one("#name", Input).value == ""  # a new name each time


# ---------------------------------------------------------------- 9. the leakage view


async def test_the_leakage_pairs_have_labels_and_the_unhashable_images_are_listed(tmp_path: Path, photos,  # noqa: F811
                                                                                   monkeypatch) -> None:
    from test_leakage import PLANTED, write_dataset
    from test_tui_screens import open_dataset, scan_finished

    monkeypatch.setenv("FFDV_CACHE", str(tmp_path / "cache"))
    data = write_dataset(tmp_path / "data", photos)
    (data / "valset" / "other10.jpg").write_bytes(b"not a picture")  # cannot be hashed
    (tmp_path / "runs").mkdir()
    app = make_app(tmp_path / "runs", data=data, images="none")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_dataset(pilot, app)
        await wait_until(pilot, lambda: scan_finished(screen), 30, "the health scan")
        pairs = screen.query_one("#ds-pairs", FrameTable)
        await pilot.press("l")
        await wait_until(pilot, lambda: pairs.row_count == len(PLANTED) + 1, 60, "the pairs and the unhashable image")
        rows = [{key: str(pairs.value_at(r, key)) for key in ("name", "label", "other_split", "other_label")}
                for r in range(pairs.row_count)]
        planted = [row for row in rows if row["other_split"] == "train"]
        assert len(planted) == len(PLANTED)
        assert all(row["label"] in ("real", "fake") and row["other_label"] in ("real", "fake") for row in planted)
        unhashable = [row for row in rows if row["other_split"] == "unhashable"]
        assert [row["name"] for row in unhashable] == ["other10.jpg"]
        assert "1 image not hashed" in str(pairs.border_title)
