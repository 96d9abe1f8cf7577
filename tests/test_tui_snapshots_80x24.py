"""Every screen at 80x24, the smallest terminal people use (issue 19); the workbench and the predictions
have theirs in test_tui_snapshots.py and test_tui_screens_snapshots.py. Update with --snapshot-update.

Deterministic as those are: recorded runs, relative paths, no pictures, fixed file times in UTC.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest
from conftest import MODEL_NAMES, REPO, install_fixture_runs, install_fixture_weights
from pilot_helpers import settle, wait_until, wait_until_listed
from test_tui_screens_snapshots import SAVED, model_cache, utc  # noqa: F401  (fixtures)
from textual.widgets import Input

from ffdv_tui.app import FfdvApp
from ffdv_tui.screens.checkpoints import CheckpointsScreen
from ffdv_tui.screens.dataset import DatasetScreen
from ffdv_tui.screens.help import HelpScreen
from ffdv_tui.screens.new_run import NewRunScreen
from ffdv_tui.widgets.frame_table import FrameTable

SIZE = (80, 24)


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FfdvApp:
    runs = install_fixture_runs(tmp_path / "runs")
    install_fixture_weights(runs, SAVED)
    (tmp_path / "sample_data").symlink_to(REPO / "sample_data")
    monkeypatch.chdir(tmp_path)  # relative paths on screen (runs/<run>/checkpoints/..., sample_data), wherever tmp is
    return FfdvApp(runs_dir=Path("runs"), data_dir=Path("sample_data"), images="none",
                   model_names=lambda: MODEL_NAMES)


def test_keys_screen(snap_compare, app: FfdvApp) -> None:
    async def run_before(pilot) -> None:
        await wait_until_listed(pilot, pilot.app)
        await settle(pilot, 1.5)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), 30, "the keys screen")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_checkpoints_screen(snap_compare, app: FfdvApp, utc, model_cache) -> None:  # noqa: F811
    async def run_before(pilot) -> None:
        await wait_until_listed(pilot, pilot.app)
        await settle(pilot, 1.5)
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, CheckpointsScreen)
                         and pilot.app.screen.query_one(FrameTable).row_count == 6)
        await pilot.press("down", "m", "down", "space")  # one marked to compare, one picked for a matrix
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_dataset_screen(snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(REPO)
    monkeypatch.setattr("engine.data.scan.time", types.SimpleNamespace(monotonic=lambda: 0.0))
    app = FfdvApp(runs_dir=tmp_path / "runs", data_dir=Path("sample_data"), images="none",
                  model_names=lambda: MODEL_NAMES)

    async def run_before(pilot) -> None:
        await settle(pilot, 0.5)
        await pilot.press("d")

        def scanned() -> bool:
            screen = pilot.app.screen
            return (isinstance(screen, DatasetScreen) and not screen.query_one("#scan-progress").display
                    and all(w.is_finished for w in screen.workers if w.group.startswith("dataset-"))
                    and screen.query_one("#ds-images", FrameTable).row_count == 384)

        await wait_until(pilot, scanned)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_new_run_form(snap_compare, app: FfdvApp) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot, 1.5)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, NewRunScreen) and pilot.app.screen.ready, 60,
                         "the form's checks")
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await settle(pilot, 1.5)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
