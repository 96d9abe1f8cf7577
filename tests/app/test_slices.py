"""Slices of the predictions: per-slice metrics (checked against scikit-learn), image facts, and the screen's table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pilot_helpers import make_app, static_text, wait_until, wait_until_listed
from sklearn.metrics import roc_auc_score
from textual.widgets import DataTable, Select

from engine.data.reliability import reliability
from engine.data.slices import image_facts, roc_auc, slice_metrics
from ffdv_tui.screens.predictions import PredictionSource, PredictionsScreen
from ffdv_tui.widgets.frame_table import FrameTable
from ffdv_tui.widgets.reliability import ReliabilityDiagram
from ffdv_tui.widgets.slices_table import SlicesTable


def predictions(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame]:
    """36 images of three sources; stylegan's scores are noise (its AUC about 0.5), the others separate well.
    The fakes of progan are PNG, everything else JPEG at quality 90."""
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    images.mkdir()
    rows = []
    for source in ("biggan", "progan", "stylegan"):
        for i in range(12):
            target = i % 2
            name = f"{source}-{i}.{'png' if source == 'progan' and target else 'jpg'}"
            Image.new("RGB", (40 + 300 * (source == "biggan"), 64), (i * 9, 50, 90)).save(images / name, quality=90)
            score = rng.uniform() if source == "stylegan" else float(np.clip(0.5 * target + 0.25 + rng.normal(0, 0.1), 0, 1))
            rows.append({"img_name": name, "target": target, "score": round(score, 6), "pred": int(score > 0.5),
                         "source": source})
    frame = pd.DataFrame(rows)
    csv = tmp_path / "eval.csv"
    frame.to_csv(csv, index=False)
    return csv, images, frame


def test_slice_metrics_equal_sklearn_and_flag_the_worst(tmp_path: Path) -> None:
    _, _, frame = predictions(tmp_path)
    table = slice_metrics(frame, "source", 0.5).set_index("slice")
    for source, group in frame.groupby("source"):
        assert table.loc[source, "auc"] == pytest.approx(roc_auc_score(group["target"], group["score"]))
        assert table.loc[source, "accuracy"] == pytest.approx(((group["score"] > 0.5) == group["target"]).mean())
        assert table.loc[source, "images"] == 12 and table.loc[source, "fake share"] == 0.5
    assert table["worst"].tolist() == [False, False, True]  # stylegan
    assert roc_auc(np.array([0.1, 0.2]), np.array([1, 1])) is None


def test_image_facts_read_format_quality_and_size(tmp_path: Path) -> None:
    _, images, frame = predictions(tmp_path)
    facts = image_facts(images, frame["img_name"]).set_index(frame["img_name"])
    assert facts.loc["progan-1.png", "format"] == "PNG" and facts.loc["progan-1.png", "jpeg quality"] == "not JPEG"
    assert facts.loc["progan-0.jpg", "jpeg quality"] == "Q90"
    assert facts.loc["biggan-0.jpg", "size"] == "<256 px"
    assert image_facts(None, ["a.jpg"])["format"].tolist() == ["unknown"]


async def test_the_slices_table_shows_each_source_and_filters_the_images(tmp_path: Path) -> None:
    csv, images, frame = predictions(tmp_path)
    app = make_app(tmp_path / "runs", images="none")
    async with app.run_test(size=(140, 44)) as pilot:
        await wait_until_listed(pilot, app)
        app.push_screen(PredictionsScreen(PredictionSource("an evaluation", {0: csv}, images)))
        await wait_until(pilot, lambda: isinstance(app.screen, PredictionsScreen), 30, "the screen")
        screen = app.screen
        await wait_until(pilot, lambda: screen.query(SlicesTable) and screen.query_one(FrameTable).row_count == 36,
                         30, "the predictions")
        slices = screen.query_one(SlicesTable)
        rows = slices.query_one(DataTable)
        await wait_until(pilot, lambda: rows.row_count == 4, 30, "all + three sources")
        assert [str(rows.get_row_at(i)[0]) for i in range(4)] == ["all images", "biggan", "progan", "stylegan"]
        assert str(rows.get_row_at(3)[5]) == "worst"
        ece = reliability(frame["score"], frame["target"]).ece
        assert f"ECE {ece:.4f}" in static_text(screen.query_one(ReliabilityDiagram))
        rows.focus()
        await pilot.press("down", "down", "enter")  # progan
        table = screen.query_one(FrameTable)
        await wait_until(pilot, lambda: table.row_count == 12, 30, "only progan's images")
        assert {str(table.value_at(r, "img_name")).split("-")[0] for r in range(12)} == {"progan"}
        await pilot.press("ctrl+home", "enter")  # all images again (the cursor stayed on progan)
        await wait_until(pilot, lambda: table.row_count == 36, 30, "every image")
        select = slices.query_one("#slice-by", Select)
        await wait_until(pilot, lambda: "format" in [v for _, v in select._options], 30, "the image facts")
        while select.value != "format":
            before = select.value
            await pilot.press("s")
            await wait_until(pilot, lambda b=before: select.value != b, 30, "the next slice column")
        await wait_until(pilot, lambda: rows.row_count == 3 and str(rows.get_row_at(2)[0]) == "PNG", 30, "JPEG, PNG")
        assert str(rows.get_row_at(2)[1]) == "6"


async def test_the_cursor_stays_on_its_slice_when_the_slices_are_computed_again(tmp_path: Path) -> None:
    """The slices are computed twice (the predictions' own columns first, then with the image facts) and again at
    each threshold: a cursor moved meanwhile stays on its slice instead of jumping back to the top."""
    from textual.widgets import Input

    csv, images, _ = predictions(tmp_path)
    app = make_app(tmp_path / "runs", images="none")
    async with app.run_test(size=(140, 44)) as pilot:
        await wait_until_listed(pilot, app)
        app.push_screen(PredictionsScreen(PredictionSource("an evaluation", {0: csv}, images)))
        await wait_until(pilot, lambda: isinstance(app.screen, PredictionsScreen) and app.screen.query(SlicesTable),
                         30, "the screen")
        slices = app.screen.query_one(SlicesTable)
        rows = slices.query_one(DataTable)
        await wait_until(pilot, lambda: slices.facts_read and rows.row_count == 4, 30, "the slices with the facts")
        rows.focus()
        await pilot.press("down", "down")
        assert str(rows.get_row_at(rows.cursor_row)[0]) == "progan"
        before = slices.table
        app.screen.query_one("#threshold", Input).value = "0.3"
        await wait_until(pilot, lambda: slices.table is not before, 30, "the slices at the new threshold")
        assert str(rows.get_row_at(rows.cursor_row)[0]) == "progan"
