"""Layout snapshot of the score histogram over the predictions screen (update with --snapshot-update)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import MODEL_NAMES, REPO, install_fixture_runs
from pilot_helpers import settle, wait_until

from ffdv_tui.app import FfdvApp
from ffdv_tui.screens.predictions import PredictionsScreen
from ffdv_tui.screens.score_histogram import ScoreHistogramScreen
from ffdv_tui.widgets.frame_table import FrameTable


def test_score_histogram(snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = install_fixture_runs(tmp_path / "runs")
    monkeypatch.chdir(REPO)
    app = FfdvApp(runs_dir=runs, data_dir=Path("sample_data"), images="none", model_names=lambda: MODEL_NAMES)

    async def run_before(pilot) -> None:
        await settle(pilot, 0.5)
        pilot.app.select_run("finished")
        await settle(pilot, 1.5)
        await pilot.press("v")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, PredictionsScreen)
                         and pilot.app.screen.query_one(FrameTable).row_count == 128 and pilot.app.screen._history_loaded)
        await settle(pilot)
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ScoreHistogramScreen))
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)


def test_gallery(snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ffdv_tui.screens.gallery import GalleryScreen
    from ffdv_tui.widgets.gallery_tile import GalleryTile

    runs = install_fixture_runs(tmp_path / "runs")
    monkeypatch.chdir(REPO)
    app = FfdvApp(runs_dir=runs, data_dir=Path("sample_data"), images="none", model_names=lambda: MODEL_NAMES)

    async def run_before(pilot) -> None:
        await settle(pilot, 0.5)
        pilot.app.select_run("finished")
        await settle(pilot, 1.5)
        await pilot.press("v")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, PredictionsScreen)
                         and pilot.app.screen.query_one(FrameTable).row_count == 128 and pilot.app.screen._history_loaded)
        await pilot.press("f")  # misclassified
        await wait_until(pilot, lambda: pilot.app.screen.query_one(FrameTable).row_count == 50)
        await settle(pilot)
        await pilot.press("g")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, GalleryScreen)
                         and len(pilot.app.screen.query(GalleryTile)) == 8)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)
