"""The shortcut audit: metadata alone (format, JPEG quality, sizes, mode, EXIF) predicting the label is flagged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_image
from PIL import Image

from engine.cli import main
from engine.data.metadata import jpeg_quality, read_meta
from engine.data.scan import _quality, scan_dataset


def write_dataset(root: Path, fake_format, real_format, n: int = 40, seed: int = 0, forged: bool = True) -> Path:
    """FFDI layout; ``*_format(rng, i)`` gives each image's format ("JPEG" or "PNG"). ``forged=False``: fakes look
    like reals (the noisy patch of a fake also makes its file larger, which is a shortcut of its own)."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        folder = root / f"{split}set"
        folder.mkdir(parents=True)
        lines = ["img_name,target"]
        for i in range(n):
            target = i % 2
            fmt = (fake_format if target else real_format)(rng, i)
            name = f"{split}{i:03d}.{'png' if fmt == 'PNG' else 'jpg'}"
            synthetic_image(rng, target if forged else 0, 48).save(folder / name, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
            lines.append(f"{name},{target}")
        (root / f"{split}set_label.txt").write_text("\n".join(lines) + "\n")
    return root


def test_fakes_as_png_and_reals_as_jpeg_are_flagged(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", lambda rng, i: "PNG", lambda rng, i: "JPEG")
    shortcut = scan_dataset(root).shortcut
    assert shortcut["warning"] is True and shortcut["auc"] > 0.95
    assert "format" in shortcut["features"]
    assert "jpeg:90" in shortcut["message"] and "fakes PNG (100%), reals JPEG (100%)" in shortcut["message"]
    assert set(shortcut["splits"]) == {"train", "val"}


def test_classes_that_share_formats_pass(tmp_path: Path) -> None:
    either = lambda rng, i: "PNG" if rng.uniform() < 0.5 else "JPEG"
    root = write_dataset(tmp_path / "d", either, either, n=60, forged=False)
    shortcut = scan_dataset(root).shortcut
    assert shortcut["warning"] is False and shortcut["auc"] < 0.6, shortcut
    assert shortcut["features"] == []


def test_scan_json_ends_with_the_shortcut(tmp_path: Path, capsys) -> None:
    root = write_dataset(tmp_path / "d", lambda rng, i: "PNG", lambda rng, i: "JPEG", n=20)
    assert main(["scan", str(root), "--progress", "json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["result"]
    assert {"auc", "warning", "features", "splits", "message"} <= set(result["shortcut"])
    assert result["shortcut"]["warning"] is True


@pytest.mark.parametrize("quality", [20, 45, 60, 75, 83, 92, 97])
def test_jpeg_quality_estimates_within_5(tmp_path: Path, quality: int) -> None:
    rng = np.random.default_rng(quality)
    path = tmp_path / "q.jpg"
    Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(path, quality=quality)
    assert abs(read_meta(path).quality - quality) <= 5
    Image.fromarray(rng.integers(0, 255, (64, 80), dtype=np.uint8)).save(path, quality=quality)  # one table only
    assert abs(read_meta(path).quality - quality) <= 5


def test_unreadable_quantisation_tables_give_unknown_quality(tmp_path: Path) -> None:
    class Broken:
        @property
        def quantization(self):
            raise ValueError("bad DQT")

    assert _quality(Broken()) is None
    assert jpeg_quality({0: [1, 2, 3]}) is None and jpeg_quality(None) is None
    path = tmp_path / "damaged.jpg"
    path.write_bytes(b"\xff\xd8\xff\xdb\x00\x02garbage")
    assert read_meta(path).format == "unreadable" and read_meta(path).quality_label == "not JPEG"


async def test_the_dataset_screen_shows_the_shortcut_warning(tmp_path: Path) -> None:
    from pilot_helpers import make_app, static_text, wait_until, wait_until_listed
    from textual.widgets import Static

    from ffdv_tui.screens.dataset import DatasetScreen

    root = write_dataset(tmp_path / "d", lambda rng, i: "PNG", lambda rng, i: "JPEG", n=20)
    (tmp_path / "runs").mkdir()
    app = make_app(tmp_path / "runs", data=root, images="none")
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until_listed(pilot, app)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, DatasetScreen), 30, "the dataset screen")
        summary = app.screen.query_one("#ds-summary", Static)
        await wait_until(pilot, lambda: "shortcut:" in static_text(summary), 30, "the shortcut audit")
        text = static_text(summary)
        assert "metadata alone tells fakes from reals" in text and "jpeg:90" in text
