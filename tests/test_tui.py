"""The app driven like a person would, with Pilot: runs, curves, metrics, crash display, control, the form."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import MODEL_NAMES, SAMPLE_DATA, install_fixture_runs
from pilot_helpers import make_app, rendered, wait_for_runs, wait_until

from engine.contract.runstore import RunPaths, read_events
from ffdv_tui.app import FfdvApp
from ffdv_tui.screens.confirm import ConfirmScreen
from ffdv_tui.screens.help import HelpScreen
from ffdv_tui.screens.new_run import NewRunScreen
from ffdv_tui.widgets.curves import LossPlot, MetricPlot
from ffdv_tui.widgets.log_tail import LogTail
from ffdv_tui.widgets.metrics_table import MetricsTable
from ffdv_tui.widgets.run_list import RunList

FIXTURE_NAMES = {"crashed", "finished", "stopped"}


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return install_fixture_runs(tmp_path / "runs")


async def test_runs_list_shows_every_run_with_its_status(runs: Path) -> None:
    app = make_app(runs)
    async with app.run_test(size=(100, 30)) as pilot:
        run_list = await wait_for_runs(pilot, app, FIXTURE_NAMES)
        prompts = {o.id: str(o.prompt) for o in run_list.options}
        assert prompts["finished"].startswith("✓ finished") and "3/3 · auc 0.8206" in prompts["finished"]
        assert prompts["stopped"].startswith("■ stopped")
        assert prompts["crashed"].startswith("✗ crashed")


async def test_a_long_run_name_ends_in_an_ellipsis_at_the_lists_width(runs: Path) -> None:
    """The prompts are made before the list has a width (the first frame); the list cuts them where it draws them."""
    long_name = "efficientnet_b4-ffdi-full-resolution-strong-augmentation"
    (runs / "finished").rename(runs / long_name)
    app = make_app(runs)
    async with app.run_test(size=(100, 30)) as pilot:
        run_list = await wait_for_runs(pilot, app, {"crashed", "stopped", long_name})
        width = run_list.scrollable_content_region.width
        lines = [line.strip("│┃ ") for line in rendered(run_list).splitlines()]  # inside the border
        row = next(line for line in lines if "efficientnet" in line)
        assert row.endswith("…") and len(row) <= width and row.startswith("✓ efficientnet_b4-")
        assert "3/3 · auc 0.8206" in lines  # the second line: it fits, so it is whole


async def test_selecting_a_run_shows_its_curves_metrics_and_header(runs: Path) -> None:
    app = make_app(runs)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        app.select_run("finished")
        table = app.query_one(MetricsTable)
        await wait_until(pilot, lambda: table.row_count == 3 and app.sub_title.startswith("finished · "), 10,
                         "the finished run's three validations")
        assert app.sub_title.startswith("finished · ✓ finished · cpu")
        best_row = table.row_at("3")
        assert best_row[0] == "3 ★" and best_row[1] == "0.8206"
        loss = app.query_one(LossPlot)
        run = app.selected_run
        assert len(run.loss_steps) > 10 and all(y > 0 for y in run.loss_values)
        assert "train" in rendered(loss) and "val" in rendered(loss)
        assert "AUC" in rendered(app.query_one(MetricPlot))


async def test_crashed_run_shows_how_it_ended_and_the_log(runs: Path) -> None:
    app = make_app(runs)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        app.select_run("crashed")
        log = app.query_one(LogTail)
        await wait_until(pilot, lambda: "engine ended: killed by SIGKILL" in rendered(log), 30, "the crashed run's log")
        text = rendered(log)
        assert "crashed" in text and "killed by SIGKILL" in text and "Press r to resume" in text
        assert "engine ended: killed by SIGKILL" in text


async def test_moving_through_the_list_selects_runs(runs: Path) -> None:
    app = make_app(runs)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        app.query_one(RunList).focus()
        first = app.main.selected
        await pilot.press("down")
        await wait_until(pilot, lambda: app.main.selected != first, 30, "another run to be selected")
        await wait_until(pilot, lambda: app.sub_title.startswith(app.main.selected), 30, "the header to follow")


async def test_every_movement_key_of_the_list_selects_the_run_it_moves_to(runs: Path) -> None:
    app = make_app(runs)
    async with app.run_test(size=(100, 30)) as pilot:
        run_list = await wait_for_runs(pilot, app, FIXTURE_NAMES)
        run_list.focus()
        names = run_list.names
        for key, expected in (("end", names[-1]), ("home", names[0]), ("up", names[-1]),  # up from the top wraps
                              ("down", names[0]), ("pagedown", names[-1]), ("pageup", names[0])):
            await pilot.press(key)
            await wait_until(pilot, lambda e=expected: app.main.selected == e and run_list.highlighted == names.index(e),
                             30, f"{key} to select {expected}")


async def test_keys_that_come_before_the_screen_moved_each_count(runs: Path) -> None:
    """Two downs handled by the list before the screen took the first: the second moves on from the first."""
    app = make_app(runs)
    async with app.run_test(size=(100, 30)) as pilot:
        run_list = await wait_for_runs(pilot, app, FIXTURE_NAMES)
        names = run_list.names
        assert app.main.selected == names[0]
        run_list.action_cursor_down()
        run_list.action_cursor_down()
        await wait_until(pilot, lambda: app.main.selected == names[2] and run_list.highlighted == 2, 30,
                         "the third run")


async def test_the_list_highlight_and_the_run_shown_are_drawn_in_the_same_frame(runs: Path, monkeypatch) -> None:
    """After an arrow key, the list's highlight and the header naming the run are redrawn by one frame.

    Moved by the list itself, the highlight was drawn a frame before the run; the header,
    updated by a watcher of the app's sub-title, a frame after it.
    """
    app = make_app(runs)
    frames: list[set[str]] = []  # the widgets each frame redrew
    original_refresh = app.main._compositor_refresh

    def drawn() -> None:
        frames.append({type(widget).__name__ for widget in app.main._dirty_widgets})
        original_refresh()

    monkeypatch.setattr(app.main, "_compositor_refresh", drawn)
    async with app.run_test(size=(100, 30)) as pilot:
        run_list = await wait_for_runs(pilot, app, FIXTURE_NAMES)
        await wait_until(pilot, lambda: app.main.painted, 30, "the first repaint")
        run_list.focus()
        await pilot.pause(0.1)
        for key in ("down", "down", "up"):
            before = app.main.selected
            frames.clear()  # the frames of the last key are drawn: it waited 0.1 s after its run was shown
            await pilot.press(key)
            await wait_until(pilot, lambda b=before: app.main.selected != b and any("RunList" in f for f in frames),
                             30, f"the run after {key}")
            await pilot.pause(0.1)
            with_list = [f for f in frames if "RunList" in f]
            assert with_list and all({"SteadyHeaderTitle", "LossPlot", "MetricsTable"} <= f for f in with_list), frames
            assert not any("SteadyHeaderTitle" in f and "RunList" not in f for f in frames), frames


async def test_a_run_started_elsewhere_appears_live(runs: Path) -> None:
    app = make_app(runs)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        import shutil

        shutil.copytree(runs / "finished", runs / "late")
        await wait_until(pilot, lambda: "late" in app.query_one(RunList).names, 30, "the new run in the list")


async def test_keys_screen_and_palette_list_the_actions(runs: Path) -> None:
    app = make_app(runs)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), 30, "the keys screen")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen), 30, "the keys screen to close")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("New run", "Pause/Resume", "Stop", "Checkpoint", "Resume run", "Predictions", "Dataset",
                      "Checkpoints", "Quit", "Show run finished"):
            assert title in titles


async def test_commands_on_a_finished_run_explain_instead_of_sending(runs: Path) -> None:
    app = make_app(runs)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        app.select_run("finished")
        await wait_until(pilot, lambda: app.selected_run is not None and app.selected_run.name == "finished")
        await pilot.press("p")
        await wait_until(pilot, lambda: any("nothing to pause" in n.message for n in app._notifications), 10,
                         "the explanation")
        assert not (runs / "finished" / "commands.jsonl").exists()


async def test_quit_without_live_runs_needs_no_confirmation(runs: Path) -> None:
    app = make_app(runs)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        await pilot.press("q")
        await wait_until(pilot, lambda: app.return_value == "", 30, "the app to exit")
    assert app.return_value == ""


# ---------------------------------------------------------------- the new-run form


async def open_form(pilot, app) -> NewRunScreen:
    await pilot.press("n")
    await wait_until(pilot, lambda: isinstance(app.screen, NewRunScreen), 10)
    form = app.screen
    await wait_until(pilot, lambda: form.ready, 30)  # defaults that work on the sample data
    return form


async def set_field(pilot, form: NewRunScreen, name: str, value: str) -> None:
    from textual.widgets import Input

    widget = form.query_one(f"#{name}", Input)
    widget.value = value
    await wait_until(pilot, lambda: form.checked.get(name) == value, 30, f"the check of {name} = {value!r}")


BAD_VALUES = [
    ("model", "resnet10", "not a timm model; did you mean resnet10t"),
    ("img_size", "8", "between 16 and 4096"),
    ("img_size", "big", "whole number"),
    ("epochs", "0", "at least 1"),
    ("batch_size", "-4", "at least 1"),
    ("lr", "fast", "a number"),
    ("lr", "20", "below 10"),
    ("pretrained", "/nonexistent/weights.safetensors", "no such file"),
    ("gpus", "0", "at least 1"),
    ("name", "../escape", "not usable as a folder name"),
]


async def test_every_bad_value_is_explained_and_blocks_start(runs: Path, tmp_path: Path) -> None:
    app = make_app(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot, app)
        start = form.query_one("#start")
        assert not start.disabled
        for name, bad, reason in BAD_VALUES:
            good = form.query_one(f"#{name}").value
            await set_field(pilot, form, name, bad)
            why = str(form.query_one(f"#{name}-why").render())
            assert reason in why or reason in (form.query_one(f"#{name}-why").tooltip or ""), (name, why)
            assert start.disabled, name
            await set_field(pilot, form, name, good)
            assert not start.disabled, name
        weights = tmp_path / "notes.txt"
        weights.write_text("x")
        await set_field(pilot, form, "pretrained", str(weights))
        assert "weights file" in str(form.query_one("#pretrained-why").render()) and start.disabled


async def test_tab_walks_the_fields_and_the_help_line_follows_the_focus(runs: Path) -> None:
    from engine.contract.config import load_config
    from ffdv_tui.screens.new_run import FIELDS, parse

    app = make_app(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot, app)
        help_line = form.query_one("#field-help")
        for field in FIELDS:  # every field, in order; each says what it is and the setting it becomes
            await wait_until(pilot, lambda field=field: app.focused is form.query_one(f"#{field.name}")
                             and str(help_line.render()).startswith(f"{field.label}: "), what=f"{field.name} and its help")
            text = str(help_line.render())
            if field.key is not None:
                assert text.endswith(f" · {field.key}"), text
                value = parse(field, str(form.query_one(f"#{field.name}").value))
                load_config(overrides={field.key: value})  # the help names a real setting
            await pilot.press("tab")


async def test_dataset_field_reports_broken_label_files(runs: Path, tiny_copy: Path) -> None:
    (tiny_copy / "valset_label.txt").write_text("img_name,target\nval00000.jpg,5\n")
    app = make_app(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot, app)
        await set_field(pilot, form, "data", str(tiny_copy))
        await wait_until(pilot, lambda: "data" not in form.pending, 20)
        why = form.query_one("#data-why")
        assert "valset_label.txt" in str(why.render()) and "not 0 or 1" in (why.tooltip or "")
        assert form.query_one("#start").disabled
        await set_field(pilot, form, "data", str(tiny_copy / "nothing-here"))
        await wait_until(pilot, lambda: "data" not in form.pending, 20)
        assert "not found" in str(why.render())


# ---------------------------------------------------------------- a real run, steered from the app


@pytest.mark.slow
async def test_start_pause_resume_stop_a_real_run_on_the_sample_data(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    app = FfdvApp(runs_dir=runs, data_dir=SAMPLE_DATA, model_names=lambda: MODEL_NAMES)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        form = await open_form(pilot, app)
        await set_field(pilot, form, "img_size", "48")
        await set_field(pilot, form, "epochs", "30")
        await set_field(pilot, form, "name", "steered")
        await pilot.press("ctrl+s")
        def run():
            return app.runs.get("steered")

        await wait_until(pilot, lambda: app.main.selected == "steered" and app.selected_run is not None, 60)
        await wait_until(pilot, lambda: run().step > 0, 120)
        assert app.query_one(RunList).names[0] == "steered"
        # the first validation reaches the curves and the metrics table
        await wait_until(pilot, lambda: app.query_one(MetricsTable).row_count >= 1, 180)
        await wait_until(pilot, lambda: "val" in rendered(app.query_one(LossPlot)), 30, "the val loss on the plot")
        assert len(run().loss_steps) >= 2
        assert "AUC" in rendered(app.query_one(MetricPlot))
        await pilot.press("p")
        await wait_until(pilot, lambda: run().status == "paused", 60)
        await wait_until(pilot, lambda: any("paused at epoch" in n.message for n in app._notifications), 10)
        step = run().step
        await pilot.pause(1.5)  # a paused engine takes no step: nothing to wait for but time
        assert run().step == step
        await pilot.press("p")
        await wait_until(pilot, lambda: run().status == "running" and run().step > step, 60)
        await pilot.press("c")
        await wait_until(pilot, lambda: any("checkpoint saved" in n.message for n in app._notifications), 60)
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 10)
        await pilot.press("y")
        await wait_until(pilot, lambda: run().status == "stopped", 90)
        events = read_events(RunPaths(runs / "steered").events)
        assert events[-1].kind == "run_finished" and events[-1].status == "stopped"
        await pilot.press("q")
        await wait_until(pilot, lambda: app.return_value == "", 30, "the app to exit")
    assert app.return_value == ""


@pytest.mark.slow
async def test_quitting_with_a_live_run_asks_and_leaves_it_running(tiny_ffdi: Path, tmp_path: Path) -> None:
    from engine.contract.config import load_config
    from engine.contract.launch import engine_alive, stop_engine, wait_for

    runs = tmp_path / "runs"
    app = FfdvApp(runs_dir=runs, data_dir=tiny_ffdi, model_names=lambda: MODEL_NAMES)
    async with app.run_test(size=(100, 30)) as pilot:
        config = load_config(overrides={"data.root": str(tiny_ffdi), "data.img_size": 48, "train.epochs": 50,
                                         "run.name": "longer"})
        name = await asyncio.get_running_loop().run_in_executor(None, app.start_run, config)
        await wait_until(pilot, lambda: (e := app.runs.get(name)) is not None and e.status == "running", 60)
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 10)
        await pilot.press("y")
        await wait_until(pilot, lambda: app.return_value is not None, 30, "the app to exit")
    assert "Left running: longer" in app.return_value
    paths = RunPaths(runs / "longer")
    assert engine_alive(paths)
    stop_engine(paths)
    assert wait_for(lambda: engine_alive(paths) is False, 60)


def test_the_command_keeps_full_garbage_collections_out_of_key_presses(tmp_path: Path, monkeypatch) -> None:
    """`ffdv-tui` freezes the heap it starts with, so a full collection walks only what is new (bench_tui's max)."""
    import gc

    from ffdv_tui.__main__ import main
    from ffdv_tui.app import quiet_garbage_collector

    started = []
    monkeypatch.setattr(FfdvApp, "run", lambda self: started.append(self.quiet_gc))
    assert main(["--runs", str(tmp_path), "--images", "none"]) == 0
    assert started == [True]

    before = gc.get_threshold()
    try:
        quiet_garbage_collector()
        assert gc.get_freeze_count() > 1000
        assert gc.get_threshold() == before  # rarer full collections each freed more: 130-270 ms pauses
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_the_heap_is_frozen_again_once_every_run_folder_is_read(tmp_path: Path, monkeypatch) -> None:
    """Runs the watcher reads after the first frame (a folder of 200, say) would otherwise be walked by every full
    collection: 130-270 ms, the slowest key presses while training."""
    import gc

    runs = install_fixture_runs(tmp_path / "runs")
    monkeypatch.setattr("ffdv_tui.app.FIRST_READ_BUDGET_S", 0.0)  # the first frame reads one run, the watcher the rest
    app = make_app(runs, quiet_gc=True)
    freezes: list[tuple[int, bool]] = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append((len(app.runs), app.main.listed)))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        await wait_until(pilot, lambda: len(freezes) == 2, 30, "the second freeze")
        await pilot.pause(0.3)  # and no third: later updates freeze nothing
    assert freezes[0] == (1, False)  # after the first frame, one run read
    assert freezes[1][0] == 3 and len(freezes) == 2

