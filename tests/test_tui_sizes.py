"""Issue 19: the app at the sizes people have (80x24, 120x36), one Pilot test per item.

Each test drives the recorded runs of tests/fixtures/runs (stand-in weights beside their
checkpoint sidecars) and waits for the exact change an action causes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import install_fixture_runs, install_fixture_weights
from pilot_helpers import make_app, wait_for_runs, wait_until

from ffdv_tui.screens.checkpoints import CheckpointsScreen
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
