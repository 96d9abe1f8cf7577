"""Layout snapshots of the predictions, dataset and checkpoints screens (update with --snapshot-update).

Deterministic by construction: recorded fixture runs, relative paths (the working folder is
the checkout, or the runs' parent for the checkpoints), no pictures (--images none), the
scan's clock stopped (it prints how long it took), checkpoint files of fixed size and time
shown in UTC.
"""

from __future__ import annotations

import json
import os
import time
import types
from pathlib import Path

import pytest
from conftest import MODEL_NAMES, REPO, install_fixture_runs, install_fixture_weights
from pilot_helpers import settle, wait_until

from ffdv_tui.app import FfdvApp
from ffdv_tui.screens.checkpoints import CheckpointsScreen
from ffdv_tui.screens.dataset import DatasetScreen
from ffdv_tui.screens.predictions import PredictionsScreen
from ffdv_tui.widgets.frame_table import FrameTable
from ffdv_tui.widgets.slices_table import SlicesTable

SAVED = 1_795_916_332  # every fake checkpoint file's mtime (a fixed time, shown in UTC)


@pytest.fixture
def utc():
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.fixture
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ffdv_tui.model_names import cache_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache_path().parent.mkdir(parents=True)
    cache_path().write_text(json.dumps(MODEL_NAMES))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_predictions_screen(snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size) -> None:
    runs = install_fixture_runs(tmp_path / "runs")
    monkeypatch.chdir(REPO)
    app = FfdvApp(runs_dir=runs, data_dir=Path("sample_data"), images="none", model_names=lambda: MODEL_NAMES)

    async def run_before(pilot) -> None:
        await settle(pilot, 0.5)
        pilot.app.select_run("finished")
        await settle(pilot, 1.5)  # the main screen's repaints are over (they would rewrite the header)
        await pilot.press("v")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, PredictionsScreen)
                   and pilot.app.screen.query_one(FrameTable).row_count == 128 and pilot.app.screen._history_loaded
                   and pilot.app.screen.query_one(SlicesTable).facts_read)  # the slices with the images' facts
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_dataset_screen_after_the_scan(snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "runs").mkdir()  # no runs: d opens the app's --data
    monkeypatch.chdir(REPO)
    monkeypatch.setattr("engine.data.scan.time", types.SimpleNamespace(monotonic=lambda: 0.0))  # "in 0.0s"
    app = FfdvApp(runs_dir=tmp_path / "runs", data_dir=Path("sample_data"), images="none",
                  model_names=lambda: MODEL_NAMES)

    async def run_before(pilot) -> None:
        await settle(pilot, 0.5)
        await pilot.press("d")

        def scanned() -> bool:
            screen = pilot.app.screen
            table = screen.query_one("#ds-images", FrameTable)
            return (isinstance(screen, DatasetScreen) and not screen.query_one("#scan-progress").display
                    and all(w.is_finished for w in screen.workers if w.group.startswith("dataset-")) and table.row_count == 384
                    and "reading" not in table.border_subtitle)

        await wait_until(pilot, scanned)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)


def test_checkpoints_screen(snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, utc, model_cache) -> None:
    runs = install_fixture_runs(tmp_path / "runs")
    install_fixture_weights(runs, SAVED)
    monkeypatch.chdir(tmp_path)  # the catalog's paths read runs/<run>/checkpoints/...
    app = FfdvApp(runs_dir=Path("runs"), data_dir=REPO / "sample_data", images="none",
                  model_names=lambda: MODEL_NAMES)

    async def run_before(pilot) -> None:
        await settle(pilot, 1.5)  # the main screen's repaints are over (they would rewrite the header)
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, CheckpointsScreen)
                   and pilot.app.screen.query_one(FrameTable).row_count == 6)
        await pilot.press("down", "m", "down")  # finished/epoch-001 marked, compared with finished/epoch-002
        await settle(pilot)

    assert snap_compare(app, terminal_size=(160, 40), run_before=run_before)
