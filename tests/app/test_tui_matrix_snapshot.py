"""Layout snapshot of the evaluation-matrix screen (update with --snapshot-update).

Deterministic by construction: a matrix written by hand (test_tui_matrix.fake_matrix), no pictures.
"""

from __future__ import annotations

from pathlib import Path

from conftest import MODEL_NAMES
from pilot_helpers import settle, wait_until, wait_until_listed
from test_tui_matrix import fake_matrix
from textual.widgets import DataTable

from ffdv_tui.app import FfdvApp
from ffdv_tui.screens.matrix import MatrixScreen


def test_matrix_screen(snap_compare, tmp_path: Path) -> None:
    folder = fake_matrix(tmp_path / "m", tmp_path)
    (tmp_path / "runs").mkdir()
    app = FfdvApp(runs_dir=tmp_path / "runs", data_dir=None, images="none", model_names=lambda: MODEL_NAMES)

    async def run_before(pilot) -> None:
        await wait_until_listed(pilot, app)
        app.push_screen(MatrixScreen(folder, "none"))
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen)
                         and app.screen.query_one("#matrix-table", DataTable).row_count == 3, 60, "the matrix screen to fill")
        await settle(pilot, 0.5)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
