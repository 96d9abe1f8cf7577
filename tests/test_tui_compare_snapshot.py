"""The comparison screen's layout: three recorded runs, curves, the table and the ROC curves (a snapshot)."""

from __future__ import annotations

from pathlib import Path

from conftest import install_fixture_runs
from pilot_helpers import make_app, settle, wait_until

from ffdv_tui.screens.compare import CompareScreen


def test_comparison_screen(snap_compare, tmp_path: Path) -> None:
    runs = install_fixture_runs(tmp_path / "runs")
    app = make_app(runs, images="none")

    async def run_before(pilot) -> None:
        await wait_until(pilot, lambda: pilot.app.main.listed and len(pilot.app.main.runs) == 3)
        await pilot.press("a", "m")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, CompareScreen) and pilot.app.screen.loaded)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(140, 40), run_before=run_before)
