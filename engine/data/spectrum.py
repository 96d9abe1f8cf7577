"""Frequency views: the log-magnitude spectrum of an image's high-pass residual, class means and radial profiles.

Torch-free (numpy and PIL), so the app computes them in a worker. A generator's up-sampling
leaves a periodic grid in the noise of an image; the content hides it, the residual (the
image minus a 3x3 median-filtered copy) keeps it, and its 2-D FFT shows it as peaks. The
image is not resized (that would blur the grid away): a centre crop of ``size`` pixels at
native resolution is taken (an image smaller than that is padded with its mean), a Hann
window removes the crop's edges from the spectrum, and the DC term sits in the middle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from engine.data.dataset import Split
from engine.data.images import BadImage, open_rgb

SPECTRUM_SIZE = 256
CLASSES = {0: "real", 1: "fake"}


def gray_crop(image: Image.Image, size: int = SPECTRUM_SIZE) -> np.ndarray:
    """The centre ``size`` x ``size`` of the image's luminance, float64, padded with its mean where it is smaller."""
    gray = np.asarray(image.convert("L"), dtype=np.float64)
    h, w = gray.shape
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    crop = gray[top:top + size, left:left + size]
    if crop.shape != (size, size):
        padded = np.full((size, size), crop.mean() if crop.size else 0.0)
        y, x = (size - crop.shape[0]) // 2, (size - crop.shape[1]) // 2
        padded[y:y + crop.shape[0], x:x + crop.shape[1]] = crop
        crop = padded
    return crop


def residual(gray: np.ndarray) -> np.ndarray:
    """The image minus its 3x3 median (edges reflected): the noise a generator leaves, without the content."""
    padded = np.pad(gray, 1, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3))
    return gray - np.median(windows, axis=(-2, -1))


def power_spectrum(gray: np.ndarray) -> np.ndarray:
    """|FFT|^2 of the windowed residual, DC in the middle (fftshift)."""
    size = gray.shape[0]
    window = np.outer(np.hanning(size), np.hanning(gray.shape[1]))
    return np.abs(np.fft.fftshift(np.fft.fft2(residual(gray) * window))) ** 2


def log_spectrum(power: np.ndarray) -> np.ndarray:
    return np.log1p(power)


def radial_profile(power: np.ndarray) -> np.ndarray:
    """The mean power at each integer distance from the centre (DC), out to the inscribed circle."""
    h, w = power.shape
    yy, xx = np.indices(power.shape)
    radius = np.hypot(yy - h // 2, xx - w // 2).round().astype(int)
    inside = radius < min(h, w) // 2
    sums = np.bincount(radius[inside], weights=power[inside])
    counts = np.bincount(radius[inside])
    return sums / np.maximum(counts, 1)


@dataclass
class ClassSpectra:
    """The mean power spectrum of each class of a sample, with what could not be read."""

    mean_power: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)

    def difference(self) -> np.ndarray | None:
        """log mean power of fake minus that of real: where fakes carry energy that reals do not."""
        if set(self.mean_power) != set(CLASSES.values()):
            return None
        return log_spectrum(self.mean_power["fake"]) - log_spectrum(self.mean_power["real"])


def sample_positions(split: Split, per_class: int, seed: int = 0) -> dict[str, list[int]]:
    """Up to ``per_class`` random images of each class (all images as one class "all" without labels)."""
    rng = np.random.default_rng(seed)
    if split.targets is None:
        groups = {"all": np.arange(len(split))}
    else:
        targets = np.asarray(split.targets)
        groups = {name: np.flatnonzero(targets == value) for value, name in CLASSES.items()}
    return {name: sorted(int(i) for i in rng.permutation(idx)[:per_class]) for name, idx in groups.items()}


def class_spectra(split: Split, per_class: int, size: int = SPECTRUM_SIZE, seed: int = 0,
                  on_progress: Callable[[int, int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> ClassSpectra:
    """Mean residual power spectra of a sample of each class; ``on_progress(done, total)`` after each image;
    ``should_stop()`` ends it early (what was summed so far is kept)."""
    chosen = sample_positions(split, per_class, seed)
    total, done = sum(len(v) for v in chosen.values()), 0
    result = ClassSpectra()
    for name, positions in chosen.items():
        acc, n = np.zeros((size, size)), 0
        for i in positions:
            if should_stop is not None and should_stop():
                break
            try:
                acc += power_spectrum(gray_crop(open_rgb(Path(split.folder) / split.names[i]), size))
                n += 1
            except BadImage as exc:
                result.unreadable[split.names[i]] = str(exc)
            done += 1
            if on_progress is not None:
                on_progress(done, total)
        if n:
            result.mean_power[name], result.counts[name] = acc / n, n
    return result


def to_png(values: np.ndarray) -> Image.Image:
    """Values scaled from their 1st to 99.9th percentile to 8-bit gray (a few peaks do not flatten the rest)."""
    lo, hi = np.percentile(values, [1.0, 99.9])
    scaled = np.clip((values - lo) / (hi - lo or 1.0), 0.0, 1.0)
    return Image.fromarray((scaled * 255.0 + 0.5).astype(np.uint8), mode="L")


def write_spectra(result: ClassSpectra, out_dir: Path) -> list[Path]:
    """spectrum-<class>.png/.npy (log mean power), difference.png/.npy (fake minus real), radial.csv."""
    from engine.contract.runstore import atomic_path

    out_dir = Path(out_dir)
    written: list[Path] = []
    arrays = {f"spectrum-{name}": log_spectrum(power) for name, power in result.mean_power.items()}
    difference = result.difference()
    if difference is not None:
        arrays["difference"] = difference
    for stem, values in arrays.items():
        for suffix in (".npy", ".png"):
            path = out_dir / f"{stem}{suffix}"
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.save(fh, values.astype(np.float32)) if suffix == ".npy" else to_png(values).save(fh, format="PNG")
            written.append(path)
    profiles = {name: radial_profile(power) for name, power in result.mean_power.items()}
    lines = ["radius," + ",".join(profiles)]
    for r in range(min((len(p) for p in profiles.values()), default=0)):
        lines.append(f"{r}," + ",".join(f"{p[r]:.6g}" for p in profiles.values()))
    with atomic_path(out_dir / "radial.csv") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return [*written, out_dir / "radial.csv"]
