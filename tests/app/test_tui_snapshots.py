"""Layout snapshots of the app on recorded runs (pytest-textual-snapshot; update with --snapshot-update).

Deterministic by construction: recorded runs that do not change, times and memory from
their events, no clock in the header, notifications off.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, install_fixture_runs
from pilot_helpers import make_app, settle, wait_until, wait_until_listed
from textual.widgets import Input

from ffdv_tui.app import FfdvApp
from ffdv_tui.screens.new_run import NewRunScreen


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FfdvApp:
    runs = install_fixture_runs(tmp_path / "runs")
    monkeypatch.chdir(REPO)  # paths on screen relative to the checkout, wherever it is
    return make_app(runs, data=Path("sample_data"))


def select(name: str):
    async def run_before(pilot) -> None:
        await wait_until_listed(pilot, pilot.app)
        pilot.app.select_run(name)
        await wait_until(pilot, lambda: pilot.app.main.painted and pilot.app.sub_title.startswith(f"{name} · "), 60,
                         f"{name} on the main screen")
        await settle(pilot, 1.5)

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_main_screen_finished_run(snap_compare, app: FfdvApp, size) -> None:
    assert snap_compare(app, terminal_size=size, run_before=select("finished"))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_main_screen_crashed_run(snap_compare, app: FfdvApp, size) -> None:
    assert snap_compare(app, terminal_size=size, run_before=select("crashed"))


def test_new_run_form(snap_compare, app: FfdvApp) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot, 1.5)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, NewRunScreen) and pilot.app.screen.ready, 60,
                         "the form's checks")
        form = pilot.app.screen
        form.query_one("#model").value = "resnet10"  # one field in error
        await wait_until(pilot, lambda: "not a timm model" in str(form.query_one("#model-why").render())
                         and form.query_one("#start").disabled, 60, "the model's error")
        for field in form.query(Input):  # a blinking cursor is drawn or not depending on the moment of capture
            field.cursor_blink = False
        await settle(pilot, 1.5)

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)
