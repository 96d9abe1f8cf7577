"""Work the app must not do (counts, not timings): the first read of the runs folder off the UI thread, newest
run first; the keys and the runs in the first frame; and the benchmark's report is complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import install_fixture_runs
from pilot_helpers import make_app, screen_text, wait_for_runs, wait_until

from ffdv_tui.runs import RunsModel
from ffdv_tui.screens.help import HelpScreen
from ffdv_tui.widgets.key_bar import KeyBar
from ffdv_tui.widgets.run_list import RunList

REPO = Path(__file__).resolve().parents[2]
FIXTURE_NAMES = {"crashed", "finished", "stopped"}


def age(runs: Path, order: list[str]) -> None:
    """Give the runs' event logs modification times in ``order``, oldest first."""
    for i, name in enumerate(order):
        os.utime(runs / name / "events.jsonl", (1_700_000_000 + i, 1_700_000_000 + i))


def test_a_poll_with_a_budget_reads_the_newest_run_first_and_says_more_are_coming(tmp_path: Path) -> None:
    runs = install_fixture_runs(tmp_path / "runs")
    age(runs, ["finished", "crashed", "stopped"])
    model = RunsModel(runs)
    first = model.poll(budget=0.0)
    assert set(first.runs) == {"stopped"} and not first.complete and model.behind
    second = model.poll(budget=0.0)
    assert set(second.runs) == {"stopped", "crashed"} and not second.complete
    third = model.poll(budget=0.0)
    assert set(third.runs) == FIXTURE_NAMES and third.complete and not model.behind


def test_the_first_poll_reports_an_empty_or_missing_runs_folder(tmp_path: Path) -> None:
    update = RunsModel(tmp_path / "nothing here").poll(budget=0.05)
    assert update is not None and update.complete and not update.runs


async def test_the_first_frame_reads_only_the_newest_run_once_the_budget_is_spent(tmp_path: Path, monkeypatch) -> None:
    """Before the first frame the UI thread reads runs only until the budget is spent; the watcher reads the rest."""
    runs = install_fixture_runs(tmp_path / "runs")
    age(runs, ["finished", "crashed", "stopped"])
    monkeypatch.setattr("ffdv_tui.app.FIRST_READ_BUDGET_S", 0.0)
    on_ui_thread = []
    app = make_app(runs)
    original = app.model.poll

    def poll(*args, **kwargs):
        update = original(*args, **kwargs)
        if app._thread_id == threading.get_ident():
            on_ui_thread.append(set(update.runs) if update else None)
        return update

    monkeypatch.setattr(app.model, "poll", poll)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        assert app.main.listed
    assert on_ui_thread == [{"stopped"}]


async def test_the_first_frame_shows_the_keys_and_the_runs_read_before_it(tmp_path: Path, monkeypatch) -> None:
    """Textual's Footer added its keys a frame later, and the runs read in on_mount waited for the next repaint."""
    runs = install_fixture_runs(tmp_path / "runs")
    age(runs, ["finished", "crashed", "stopped"])
    first_frame: dict[str, object] = {}
    app = make_app(runs)
    original_refresh = app.main._compositor_refresh

    def drawn() -> None:
        original_refresh()
        if not first_frame:
            first_frame["keys"] = [key.key for key in app.main.query_one(KeyBar).keys]
            first_frame["runs"] = [run.name for run in app.main.query_one(RunList).runs]
            first_frame["screen"] = screen_text(app)

    monkeypatch.setattr(app.main, "_compositor_refresh", drawn)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: first_frame, 30, "the first frame")
    assert first_frame["keys"][:2] == ["n", "p"]
    assert first_frame["runs"] and first_frame["runs"][0] == "stopped"
    assert " n New run " in first_frame["screen"] and "stopped" in first_frame["screen"]


@pytest.mark.timeout(120)
def test_the_benchmark_reports_every_number_in_a_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "tui.json"
    smoke = ["--presses", "2", "--startups", "1", "--runs", "3", "--no-training", "--settle", "0.2", "--epochs", "3"]
    result = subprocess.run([sys.executable, str(REPO / "bench" / "bench_tui.py"), *smoke, "--json", str(out)],
                            capture_output=True, text=True, timeout=110)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    for key in ("first frame, empty runs folder, s (median)", "first frame, 100-epoch FFDI log, s (median)",
                "first frame, many runs, s (median)", "key press, idle, p50 / p95 / max ms",
                "key press, idle, many runs, p50 / p95 / max ms", "load average, 1 min, lowest / highest seen", "machine",
                "reference Python work, ms, fastest / slowest seen", "key press, idle, the slowest",
                "start-ups per runs folder / presses per key"):
        assert key in report, key
    assert "load average (1 / 5 / 15 min) at the start" in result.stdout


def test_the_workbench_and_its_keys_screen_do_not_import_pandas() -> None:
    """pandas (about 0.3 s to import) is for the predictions, dataset and matrix screens, not the first frame or ``?``."""
    code = ("import sys; import ffdv_tui.app; from ffdv_tui.screens.help import dialog_rows; dialog_rows(); "
            "print(sorted(m for m in ('pandas', 'torch', 'timm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


async def test_switching_runs_formats_each_validations_table_once_and_shows_the_newest_row(tmp_path: Path,
                                                                                          monkeypatch) -> None:
    """The validations table is drawn from columns kept per run (a DataTable re-added every row on each switch)."""
    sys.path.insert(0, str(REPO / "bench"))
    from bench_runstore import long_run_events, write_log

    from engine.contract.config import load_config, save_config
    from engine.contract.runstore import RunPaths
    from ffdv_tui.widgets import metrics_table
    from ffdv_tui.widgets.metrics_table import MetricsTable

    runs = install_fixture_runs(tmp_path / "runs")
    long = RunPaths(runs / "long")
    long.root.mkdir()
    save_config(long, load_config())
    write_log(long.events, long_run_events(40, 100, 4, 2))
    made = []
    original = metrics_table.validation_columns

    def counting(run):
        made.append(run.name if run else None)
        return original(run)

    monkeypatch.setattr(metrics_table, "validation_columns", counting)
    app = make_app(runs)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES | {"long"})
        table = app.query_one(MetricsTable)
        for name in ["long", "finished"] * 3:
            app.select_run(name)
            rows = 40 if name == "long" else 3
            await wait_until(pilot, lambda rows=rows: table.row_count == rows, 30, f"the {rows} validations of {name}")
        assert made.count("long") == 1 and made.count("finished") == 1
        app.select_run("long")
        await wait_until(pilot, lambda: table.row_count == 40, 30, "the 40 validations")
        assert table.cursor_row == 39 and table.index_at(39) == "40"
        lines = [table.render_line(y).text for y in range(table.size.height)]
        assert "epoch" in lines[0] and lines[-1].startswith("40") and not any(line.startswith("1 ") for line in lines)


async def test_the_watcher_thread_starts_after_the_first_frame(tmp_path: Path, monkeypatch) -> None:
    """Its first poll reads the other run logs; started before the first frame, it shared the interpreter with it."""
    runs = install_fixture_runs(tmp_path / "runs")
    order: list[str] = []
    app = make_app(runs)
    original_watch = app._watch
    monkeypatch.setattr(app, "_watch", lambda: (order.append("watcher"), original_watch()))
    original_refresh = app.main._compositor_refresh

    def drawn() -> None:
        original_refresh()
        if "frame" not in order:
            order.append("frame")

    monkeypatch.setattr(app.main, "_compositor_refresh", drawn)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)  # read before the first frame: the watcher may not be up yet
        await wait_until(pilot, lambda: "watcher" in order, 30, "the watcher to start")
    assert order == ["frame", "watcher"]


def test_the_command_asks_textual_for_quicker_frames_unless_the_user_chose() -> None:
    """Before Textual is imported (it reads TEXTUAL_FPS once); a user's own setting wins."""
    code = ("import os, sys; os.environ.pop('TEXTUAL_FPS', None); import ffdv_tui.__main__ as m; "
            "assert 'textual' not in sys.modules; m.prefer_quick_frames(); import textual.constants as c; "
            "print(c.MAX_FPS)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "120"
    mine = {"TEXTUAL_FPS": "30"}
    from ffdv_tui.__main__ import prefer_quick_frames

    prefer_quick_frames(mine)
    assert mine == {"TEXTUAL_FPS": "30"}


async def test_the_dialogs_keys_are_made_while_idle_after_the_first_frame(tmp_path: Path) -> None:
    """The first ``?`` imported the dialogs' modules to list their keys; the app does it once the workbench is up."""
    from ffdv_tui.screens.help import dialog_rows

    dialog_rows.cache_clear()
    app = make_app(install_fixture_runs(tmp_path / "runs"))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        await wait_until(pilot, lambda: dialog_rows.cache_info().currsize == 1, 30, "the dialogs' keys")
        assert not isinstance(app.screen, HelpScreen) and dialog_rows.cache_info().hits == 0
