"""The predictions screen's map: m flips the preview between the image and its Grad-CAM, computed by an engine job,
kept per checkpoint and image, recomputed when the checkpoint changes, and explained when there is no map."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FIXTURE_RUNS
from PIL import Image
from pilot_helpers import make_app, wait_until
from safetensors.torch import save_file
from test_tui_screens import open_predictions, runs  # noqa: F401  (the runs fixture)

from engine.models import build_network
from ffdv_tui.explain_maps import MapCache, MapKey, checkpoint_for, compute_maps, map_key
from ffdv_tui.widgets.explained_preview import ExplainedPreview, spectrum_picture

MAP_TIMEOUT = 240.0  # an engine job: python, torch and timm start, then one small map (seconds on a free machine)


def write_weights(checkpoints: Path, name: str = "epoch-003", seed: int = 0) -> Path:
    """Random resnet10t weights under a fixture sidecar (resnet10t, 128 px)."""
    torch.manual_seed(seed)
    net = build_network("resnet10t", pretrained=False)
    path = checkpoints / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def picture_of(preview: ExplainedPreview):
    return preview.query_one("#picture").image


@pytest.mark.slow
async def test_m_flips_between_the_image_and_its_map(runs: Path):  # noqa: F811
    weights = write_weights(runs / "finished" / "checkpoints")
    app = make_app(runs)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_predictions(pilot, app)
        preview = screen.query_one(ExplainedPreview)
        await wait_until(pilot, lambda: picture_of(preview) is not None, 30, "the image")
        image = picture_of(preview)
        started = time.monotonic()
        await pilot.press("m")
        assert preview.showing_map and preview.map_status.startswith("computing the map of epoch-003")
        await wait_until(pilot, lambda: preview.map_status.startswith("map ·"), MAP_TIMEOUT, "the first map")
        print(f"time to the first map: {time.monotonic() - started:.1f}s")
        overlay = picture_of(preview)
        assert overlay is not None and overlay is not image
        await pilot.press("m")  # back to the image: from the thumbnail cache, at once
        assert not preview.showing_map and picture_of(preview) is image and preview.map_status == ""
        await pilot.press("m")  # and to the map again: from the map cache, at once, no job
        assert preview.map_status.startswith("map ·") and picture_of(preview) is overlay
        await pilot.press("m")
        later = time.time_ns() + 5_000_000_000
        os.utime(weights, ns=(later, later))  # the checkpoint changed: its old map must not be shown
        await pilot.press("m")
        assert preview.map_status.startswith("computing") and picture_of(preview) is None
        await wait_until(pilot, lambda: preview.map_status.startswith("map ·"), MAP_TIMEOUT, "the recomputed map")
        assert len([k for k in preview.maps._items if isinstance(k, MapKey)]) == 2


async def test_without_a_checkpoint_the_map_says_why(runs: Path):  # noqa: F811
    app = make_app(runs)  # the fixture runs keep sidecars only, no weights
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_predictions(pilot, app)
        preview = screen.query_one(ExplainedPreview)
        await pilot.press("m")
        await wait_until(pilot, lambda: "no checkpoint" in preview.map_status, 10, "the reason")
        assert preview.query_one("#map-status").display


def test_the_checkpoint_of_a_validation(tmp_path: Path):
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    assert checkpoint_for(folder.parent, 2) is None
    (folder / "best.safetensors").write_bytes(b"x")
    assert checkpoint_for(folder.parent, 2) == folder / "best.safetensors"
    (folder / "epoch-002.safetensors").write_bytes(b"xy")
    assert checkpoint_for(folder.parent, 2) == folder / "epoch-002.safetensors"
    assert checkpoint_for(None, 0, tmp_path / "c.safetensors") == tmp_path / "c.safetensors"
    image = tmp_path / "a.jpg"
    first = map_key(folder / "epoch-002.safetensors", image)
    (folder / "epoch-002.safetensors").write_bytes(b"xyz")
    assert map_key(folder / "epoch-002.safetensors", image) != first
    assert isinstance(map_key(folder / "gone.safetensors", image), str)


@pytest.mark.slow
def test_one_job_explains_good_images_and_names_a_bad_one(tmp_path: Path):
    data = tmp_path / "valset"
    data.mkdir()
    Image.new("RGB", (90, 60), (120, 30, 200)).save(data / "good.png")
    (data / "bad.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "valset_label.txt").write_text("img_name,target\ngood.png,1\nbad.jpg,0\n")
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    weights = write_weights(checkpoints, "epoch-001")
    sidecar = FIXTURE_RUNS / "finished" / "checkpoints" / "epoch-003.json"
    (checkpoints / "epoch-001.json").write_text(sidecar.read_text())
    keys = [map_key(weights, data / "good.png"), map_key(weights, data / "bad.jpg")]
    cache = MapCache()
    items = compute_maps(weights, keys, cache.folder)
    assert isinstance(items[keys[0]], Image.Image) and items[keys[0]].size == (90, 60)
    assert isinstance(items[keys[1]], str) and items[keys[1]].startswith("bad.jpg: ")


async def test_p_flips_between_the_image_and_its_spectrum(runs: Path):  # noqa: F811
    app = make_app(runs)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_predictions(pilot, app)
        preview = screen.query_one(ExplainedPreview)
        await wait_until(pilot, lambda: picture_of(preview) is not None, 30, "the image")
        image = picture_of(preview)
        await pilot.press("z")
        await wait_until(pilot, lambda: preview.map_status.startswith("spectrum ·"), 30, "the spectrum")
        spectrum = picture_of(preview)
        assert spectrum is not None and spectrum is not image and spectrum.size == (256, 256)
        await pilot.press("z")
        assert preview.view == "image" and picture_of(preview) is image and not preview.query_one("#map-status").display
        await pilot.press("z")  # kept: at once
        assert picture_of(preview) is spectrum


def test_a_spectrum_of_an_undecodable_image_says_why(tmp_path: Path):
    (tmp_path / "x.jpg").write_bytes(b"nope")
    assert spectrum_picture(tmp_path / "x.jpg").startswith("x.jpg: ")


async def test_h_shows_the_score_histogram_of_each_class(runs: Path):  # noqa: F811
    from ffdv_tui.screens.score_histogram import ScoreHistogramScreen
    from ffdv_tui.widgets.score_histogram import ScoreHistogram

    frame = pd.read_csv(runs / "finished" / "predictions" / "epoch-003.csv")
    app = make_app(runs)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_predictions(pilot, app)
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, ScoreHistogramScreen), 10, "the histogram")
        counts = app.screen.query_one(ScoreHistogram).counts
        for value, name in ((0, "real"), (1, "fake")):
            expected = np.histogram(frame.loc[frame["target"] == value, "score"], np.linspace(0, 1, 21))[0]
            assert counts[name].tolist() == expected.tolist()
        assert sum(c.sum() for c in counts.values()) == len(frame)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, 10, "the predictions again")


async def test_g_opens_the_gallery_and_enter_brings_an_image_back_with_its_map(runs: Path):  # noqa: F811
    from ffdv_tui.screens.gallery import GalleryScreen
    from ffdv_tui.widgets.frame_table import FrameTable
    from ffdv_tui.widgets.gallery_tile import GalleryTile

    app = make_app(runs)
    async with app.run_test(size=(140, 45)) as pilot:
        screen = await open_predictions(pilot, app)
        view = screen._view
        await pilot.press("g")
        await wait_until(pilot, lambda: isinstance(app.screen, GalleryScreen) and len(app.screen.query(GalleryTile)),
                         10, "the gallery")
        gallery = app.screen
        tiles = list(gallery.query(GalleryTile))
        assert len(tiles) == gallery.per_page == 5 * 3  # 140 columns / 26, 45 rows / 12
        assert [t.image_name for t in tiles] == view["img_name"].astype(str).tolist()[:15]
        await wait_until(pilot, lambda: tiles[0].query_one(".tile-picture").image is not None, 30, "a thumbnail")
        await pilot.press("pagedown")
        await wait_until(pilot, lambda: gallery.page == 1 and gallery.query(GalleryTile).first().image_name
                         == str(view["img_name"].iloc[15]), 10, "the second page")
        await pilot.press("right", "down")
        assert gallery.highlight == 1 + 5
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen, 10, "the predictions again")
        table = screen.query_one(FrameTable)
        await wait_until(pilot, lambda: table.index_at(table.cursor_row) == view.index[15 + 6], 10, "the image chosen")
        preview = screen.query_one(ExplainedPreview)
        await wait_until(pilot, lambda: preview.showing_map and "no checkpoint" in preview.map_status, 10, "its map")


async def test_w_filters_hard_examples_and_exports_them(runs: Path):  # noqa: F811
    from pilot_helpers import static_text
    from test_tui_screens import shown

    from engine.data.hard_examples import flip_flops, score_table, wrong_since
    from ffdv_tui.screens.hard_examples import HardExamplesScreen
    from ffdv_tui.widgets.frame_table import FrameTable

    scores, targets = score_table(runs / "finished")
    app = make_app(runs)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_predictions(pilot, app)
        table = screen.query_one(FrameTable)
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, HardExamplesScreen), 10, "the dialog")
        dialog = app.screen
        await pilot.click("#hard-show")  # since the first epoch (the default)
        expected = set(wrong_since(scores, targets, 1))
        await wait_until(pilot, lambda: app.screen is screen and set(shown(screen)) == expected
                         and table.row_count == len(expected), 10, "only the images wrong since epoch 1")
        assert "wrong since epoch 1" in static_text(screen.query_one("#pred-metrics"))
        await pilot.press("w")  # again: every image
        await wait_until(pilot, lambda: table.row_count == 128, 10, "every image")
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, HardExamplesScreen), 10, "the dialog")
        dialog = app.screen
        dialog.query_one("#hard-since").value = ""
        dialog.query_one("#hard-flips").value = "two"
        await pilot.click("#hard-export")
        await wait_until(pilot, lambda: "write it as M/N" in static_text(dialog.query_one("#hard-why")), 10, "why")
        dialog.query_one("#hard-flips").value = "1/3"
        export = dialog.query_one("#hard-export")
        await wait_until(pilot, lambda: not export.has_class("-active"), 10, "the button's press to end")  # else ignored
        await pilot.click("#hard-export")
        out = runs / "finished" / "hard-examples.csv"
        await wait_until(pilot, lambda: out.exists(), 10,
                         f"the CSV ({static_text(dialog.query_one('#hard-why'))!r})")
        assert set(pd.read_csv(out, dtype={"img_name": str})["img_name"]) == set(flip_flops(scores, 1, 3))


async def test_a_matrix_rows_scores_know_their_checkpoint_for_the_map(tmp_path: Path):
    from test_tui_matrix import fake_matrix
    from textual.widgets import DataTable

    from ffdv_tui.app import FfdvApp
    from ffdv_tui.screens.matrix import MatrixScreen
    from ffdv_tui.screens.predictions import PredictionsScreen

    folder = fake_matrix(tmp_path / "m", tmp_path)
    (tmp_path / "runs").mkdir()
    app = FfdvApp(runs_dir=tmp_path / "runs", data_dir=None, images="none", model_names=lambda: [])
    async with app.run_test(size=(160, 50)) as pilot:
        app.push_screen(MatrixScreen(folder, "none"))
        await wait_until(pilot, lambda: app.screen.query(DataTable) and app.screen.query_one(DataTable).row_count == 3,
                         10, "three rows")
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, PredictionsScreen), 10, "the predictions screen")
        assert app.screen.source.checkpoint == Path("/runs/a/checkpoints/best.safetensors")
        await pilot.press("m")  # that checkpoint does not exist here: the map says so, naming it
        preview = app.screen.query_one(ExplainedPreview)
        await wait_until(pilot, lambda: "/runs/a/checkpoints/best.safetensors" in preview.map_status, 10, "the reason")
