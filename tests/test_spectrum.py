"""Frequency views: a known periodic pattern peaks where it should, class means and their difference, and
``ffdv scan --spectrum``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from engine.cli import main
from engine.data.dataset import resolve_split
from engine.data.spectrum import class_spectra, gray_crop, power_spectrum, radial_profile, residual

SIZE = 256


def patterned(rng: np.random.Generator, period_x: int | None, period_y: int | None = None, size: int = SIZE):
    """Smooth content plus faint noise, with cosine grids of the given periods (an up-sampler's trace)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    gray = 80 + 60 * np.sin(yy / 40.0) * np.cos(xx / 55.0) + rng.normal(0, 2, (size, size))
    if period_x:
        gray += 12 * np.cos(2 * np.pi * xx / period_x)
    if period_y:
        gray += 12 * np.cos(2 * np.pi * yy / period_y)
    return Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).convert("RGB")


def peaks(power: np.ndarray, count: int) -> set[tuple[int, int]]:
    """The ``count`` strongest frequencies, as offsets from DC (the lowest ones masked out)."""
    c = power.shape[0] // 2
    masked = power.copy()
    masked[c - 4:c + 5, c - 4:c + 5] = 0
    flat = np.argsort(masked, axis=None)[::-1][:count]
    return {(int(y) - c, int(x) - c) for y, x in zip(*np.unravel_index(flat, power.shape), strict=True)}


def test_a_periodic_pattern_peaks_where_its_period_says():
    power = power_spectrum(gray_crop(patterned(np.random.default_rng(0), 4, 8)))
    c = SIZE // 2
    assert peaks(power, 1) <= {(0, 64), (0, -64)}  # the strongest: SIZE/4 across (the window spreads it by a bin)
    for dy, dx in ((0, 64), (0, -64), (32, 0), (-32, 0)):  # and SIZE/8 down: each a local maximum far above the rest
        y, x = c + dy, c + dx
        assert power[y, x] == power[y - 3:y + 4, x - 3:x + 4].max()
        assert power[y, x] > 1000 * np.median(power)
    plain = power_spectrum(gray_crop(patterned(np.random.default_rng(0), None)))
    assert power[SIZE // 2, SIZE // 2 + 64] > 100 * plain[SIZE // 2, SIZE // 2 + 64]


def test_the_residual_removes_content_and_keeps_noise():
    gray = gray_crop(patterned(np.random.default_rng(1), None))
    assert residual(gray).std() < 0.2 * gray.std()
    flat = np.full((32, 32), 7.0)
    assert np.abs(residual(flat)).max() == 0.0
    assert gray_crop(Image.new("RGB", (40, 20), (10, 10, 10)), 64).shape == (64, 64)  # small images are padded


def test_radial_profile_of_a_ring():
    power = np.zeros((64, 64))
    yy, xx = np.indices(power.shape)
    power[np.hypot(yy - 32, xx - 32).round() == 10] = 1.0
    profile = radial_profile(power)
    assert profile.argmax() == 10 and profile[10] == 1.0 and profile[5] == 0.0


def write_gridded(root: Path, n: int = 6) -> Path:
    """valset: reals plain, fakes with a period-4 grid; one undecodable file."""
    rng = np.random.default_rng(2)
    folder = root / "valset"
    folder.mkdir(parents=True)
    lines = ["img_name,target"]
    for i in range(n):
        fake = i % 2
        patterned(rng, 4 if fake else None, size=128).save(folder / f"v{i}.png")
        lines.append(f"v{i}.png,{fake}")
    (folder / "broken.png").write_bytes(b"no png")
    lines.append("broken.png,0")
    (root / "valset_label.txt").write_text("\n".join(lines) + "\n")
    return root


def test_class_means_and_the_command(tmp_path: Path, capsys):
    data = write_gridded(tmp_path / "data")
    split = resolve_split(data, "val")
    seen = []
    result = class_spectra(split, 10, size=128, on_progress=lambda done, total: seen.append((done, total)))
    assert result.counts == {"real": 3, "fake": 3} and list(result.unreadable) == ["broken.png"]
    assert seen[-1] == (7, 7)
    difference = result.difference()
    assert (0, 32) in peaks(np.exp(difference), 2)  # fakes' extra energy at their grid: 128/4 across
    out = tmp_path / "spectra"
    assert main(["scan", str(data), "--spectrum", "--split", "val", "--out", str(out)]) == 0
    for stem in ("spectrum-real", "spectrum-fake", "difference"):
        assert np.load(out / f"{stem}.npy").shape == (256, 256)
        with Image.open(out / f"{stem}.png") as png:
            assert png.size == (256, 256)
    radial = pd.read_csv(out / "radial.csv")
    assert list(radial.columns) == ["radius", "real", "fake"] and len(radial) == 128
    assert "could not read broken.png" in capsys.readouterr().err
