"""The dataset screen's leakage audit: l runs it in a worker, lists the pairs, shows a pair side by side."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot_helpers import make_app, static_text, wait_until
from test_leakage import PLANTED, photos, write_dataset  # noqa: F401 (photos is a fixture)
from test_tui_screens import open_dataset, scan_finished, scan_status
from textual.widgets import Static

from ffdv_tui.widgets.frame_table import FrameTable
from ffdv_tui.widgets.image_preview import ImagePreview


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FFDV_CACHE", str(tmp_path / "cache"))


async def test_l_audits_the_dataset_and_shows_each_pair_side_by_side(tmp_path: Path, photos) -> None:  # noqa: F811
    data = write_dataset(tmp_path / "data", photos)
    (tmp_path / "runs").mkdir()
    app = make_app(tmp_path / "runs", data=data, images="halfcell")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_dataset(pilot, app)
        await wait_until(pilot, lambda: scan_finished(screen), 20, "the health scan")
        pairs = screen.query_one("#ds-pairs", FrameTable)
        assert not pairs.display
        await pilot.press("l")
        await wait_until(pilot, lambda: pairs.row_count == len(PLANTED), 60, "the audit's pairs")
        assert "45% of the validation images (5 of 11) have a near-copy in training" in scan_status(screen)
        assert pairs.display and not screen.query_one("#scan-progress").display
        found = {(str(pairs.value_at(r, "name")), str(pairs.value_at(r, "other_name"))) for r in range(pairs.row_count)}
        assert found == {(name, f"photo{source}.jpg") for name, (source, _) in PLANTED.items()}
        pairs.focus()
        await pilot.press("down")
        row = pairs.cursor_row
        name, other = str(pairs.value_at(row, "name")), str(pairs.value_at(row, "other_name"))
        left = screen.query_one("#ds-preview", ImagePreview)
        right = screen.query_one("#ds-pair-preview", ImagePreview)
        await wait_until(pilot, lambda: left._path == data / "valset" / name and right._path == data / "trainset" / other
                         and right.display, 10, "both pictures of the pair")
        assert other in static_text(right.query_one("#caption", Static))


async def test_the_validations_pane_says_when_the_run_warned_of_a_leaky_validation_split(tmp_path: Path) -> None:
    import json

    from conftest import install_fixture_runs

    from ffdv_tui.widgets.metrics_table import MetricsTable

    runs = install_fixture_runs(tmp_path / "runs")
    message = ("validation split leaks: 45% of its images have a near-copy in training (leakage audit, pHash distance <= 8)"
               "; its AUC overstates how well the model generalises [bold]and picks the checkpoint by it.")
    for run in runs.iterdir():
        events = run / "events.jsonl"
        last = json.loads(events.read_text().splitlines()[-1])
        warning = {"v": 1, "seq": last["seq"] + 1, "time": last["time"], "kind": "warning", "message": message,
                   "code": "leaky_validation"}
        with open(events, "a") as fh:
            fh.write(json.dumps(warning) + "\n")
    app = make_app(runs, images="none")
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one("#metrics", MetricsTable)
        await wait_until(pilot, lambda: table.row_count > 0, 30, "a run's validations")
        await wait_until(pilot, lambda: "leaky validation: 45% near-copies" in str(table.border_subtitle), 10,
                         "the leak note under the validations")
