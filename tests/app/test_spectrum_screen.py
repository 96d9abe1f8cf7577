"""The dataset screen's spectra: s opens the mean residual spectra of the split's classes, computed in a worker."""

from __future__ import annotations

from pathlib import Path

from conftest import install_fixture_runs
from pilot_helpers import make_app, wait_until
from test_spectrum import write_gridded
from textual.widgets import Select

from ffdv_tui.screens.dataset import DatasetScreen
from ffdv_tui.screens.spectrum import SpectrumScreen


async def test_spectra_of_a_split_show_the_fakes_grid(tmp_path: Path):
    data = write_gridded(tmp_path / "data", n=8)
    app = make_app(install_fixture_runs(tmp_path / "runs"), data=data)
    async with app.run_test(size=(140, 45)) as pilot:
        app.push_screen(SpectrumScreen(data, "val", "halfcell", sample=10))
        await wait_until(pilot, lambda: isinstance(app.screen, SpectrumScreen) and app.screen.result is not None,
                         60, "the spectra")
        screen = app.screen
        assert screen.result.counts == {"real": 4, "fake": 4}
        assert list(screen.result.unreadable) == ["broken.png"]
        for name in ("real", "fake", "difference"):
            assert screen.query_one(f"#pic-{name}").image is not None
        real, fake = screen.profiles["real"], screen.profiles["fake"]
        ratio = fake / real
        assert ratio.argmax() == 64 and ratio[64] > 100  # a period-4 grid in the 256 px crop: 64 cycles per crop


async def test_s_on_the_dataset_screen_opens_the_spectra_and_says_what_is_wrong(tmp_path: Path):
    """The spectra of the split the dataset screen shows (here val: there is no train split), and what went wrong."""
    data = write_gridded(tmp_path / "data", n=4)  # a val split only, with one broken image
    app = make_app(install_fixture_runs(tmp_path / "runs"), data=data)
    async with app.run_test(size=(140, 45)) as pilot:
        app.push_screen(DatasetScreen(data, "none"))
        await wait_until(pilot, lambda: isinstance(app.screen, DatasetScreen) and app.screen.query("#ds-images"), 10,
                         "the dataset screen")
        await wait_until(pilot, lambda: app.screen.query_one("#ds-split", Select).value == "val", 30, "the val split")
        app.screen.query_one("#ds-images").focus()
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SpectrumScreen), 10, "the spectra screen")
        assert app.screen.split == "val"
        status = app.screen.query_one("#spectrum-status")
        await wait_until(pilot, lambda: "1 image could not be read, e.g. broken.png" in str(status.render()), 30,
                         "the unreadable image")
        assert app.screen.result is not None and set(app.screen.result.counts) == {"real", "fake"}
