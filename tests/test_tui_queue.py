"""The queue in the app: queued runs in the run list, the form's Queue button, the queue screen's keys."""

from __future__ import annotations

from pathlib import Path

from conftest import SAMPLE_DATA, install_fixture_runs
from pilot_helpers import make_app, wait_for_runs, wait_until

from engine.contract import queue
from engine.contract.config import load_config
from engine.contract.launch import run_status
from engine.contract.runstart import queue_run
from engine.contract.runstate import load_run
from engine.contract.runstore import RunPaths
from engine.contract.status import RunStatus
from ffdv_tui.screens.confirm import ConfirmScreen
from ffdv_tui.screens.new_run import NewRunScreen
from ffdv_tui.screens.queue import QueueScreen
from ffdv_tui.widgets.run_list import RunList


def queued_runs(runs: Path, *names: str) -> None:
    for name in names:
        config = load_config(overrides={"data.root": str(SAMPLE_DATA), "model.name": "resnet10t", "run.name": name})
        queue_run(config, runs)


async def test_queued_runs_are_listed_with_their_mark_and_counted_under_the_list(tmp_path: Path) -> None:
    runs = install_fixture_runs(tmp_path / "runs")
    queued_runs(runs, "later-a", "later-b")
    app = make_app(runs)
    async with app.run_test(size=(100, 30)) as pilot:
        run_list = await wait_for_runs(pilot, app, {"crashed", "finished", "stopped", "later-a", "later-b"})
        prompts = {o.id: str(o.prompt) for o in run_list.options}
        assert prompts["later-a"].startswith("◦ later-a") and "queued" in prompts["later-a"]
        await wait_until(pilot, lambda: app.query_one(RunList).border_subtitle == "2 queued · no runner: u", 10,
                         "the queue's count under the run list")


async def test_the_forms_queue_button_queues_the_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    app = make_app(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, NewRunScreen) and app.screen.ready, 30, "the form")
        form = app.screen
        form.query_one("#name").value = "waits"
        await wait_until(pilot, lambda: not form.query_one("#queue").disabled, 30, "the Queue button")
        await pilot.click("#queue")
        await wait_until(pilot, lambda: not isinstance(app.screen, NewRunScreen), 30, "the form to close")
        await wait_until(pilot, lambda: (r := app.main.runs.get("waits")) is not None and r.status == "queued", 30,
                         "the queued run in the list")
    assert queue.next_to_start(runs) == ["waits"] and not (runs / "waits" / "engine.json").exists()


async def test_the_queue_screen_moves_holds_and_cancels(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    queued_runs(runs, "a", "b", "c")
    app = make_app(runs)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for_runs(pilot, app, {"a", "b", "c"})
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(app.screen.rows) == 3, 30,
                         "the queue screen")
        screen = app.screen
        assert screen.highlighted_name == "a"
        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: [r.name for r in screen.rows] == ["b", "a", "c"], 30, "a moved down")
        assert queue.next_to_start(runs) == ["b", "a", "c"] and screen.highlighted_name == "a"
        await pilot.press("h")
        await wait_until(pilot, lambda: screen.rows[1].status == "held", 30, "a held")
        assert queue.next_to_start(runs) == ["b", "c"]
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 10, "the question")
        await pilot.press("y")
        await wait_until(pilot, lambda: [r.name for r in screen.rows if r.waiting] == ["b", "c"], 30, "a cancelled")
        assert "queue runner: none" in str(screen.query_one("#queue-runner").render())
    assert run_status(RunPaths(runs / "a"), load_run(runs / "a")) == RunStatus.CANCELLED


def test_queue_screen_snapshot(snap_compare, tmp_path: Path) -> None:
    from pilot_helpers import settle, wait_until_listed

    runs = tmp_path / "runs"
    queued_runs(runs, "lr0.001-resnet10t", "lr0.003-resnet10t", "lr0.01-resnet10t")
    queue.hold(runs, "lr0.003-resnet10t")

    async def run_before(pilot) -> None:
        await wait_until_listed(pilot, pilot.app)
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, QueueScreen) and len(pilot.app.screen.rows) == 3,
                         30, "the queue screen")
        await settle(pilot, 1.0)

    assert snap_compare(make_app(runs), terminal_size=(100, 16), run_before=run_before)
