"""Pseudo-fakes from real images: an image blended with a slightly changed copy of itself under a soft mask.

The idea of self-blended images (Shiohara & Yamasaki, CVPR 2022, "SBI"; Face X-ray, Li et al., CVPR
2020): a detector trained only on one generator's fakes learns that generator's artefacts and is at
chance on a new one. Every blend, whatever made it, leaves a boundary where two versions of the
picture meet: a seam in colour, sharpness, scale, position or compression. Real images turned into
such fakes on the fly teach the detector to look for the seam, not for one generator.

The data here is not only faces, so the masks are landmark-free: an ellipse, a star-shaped polygon
or a blob of smoothed noise, anywhere in the picture, softened at its edge. Outside the mask's
support the image is left bit-for-bit as it was. Torch-free (numpy, Pillow, SciPy): the loader's
workers call it with a generator seeded per sample, so a resumed run makes the same pseudo-fakes,
and the app could show one.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

from engine.contract.errors import DataError
from engine.data.dataset import Split

MIN_SIDE = 16  # pixels: below this on either side an image stays real (no room for a mask and its edge)
AREA_RANGE = (0.08, 0.45)  # the mask's soft area (mean value), as a share of the image
SHAPES = ("ellipse", "polygon", "blob")


@dataclass(frozen=True)
class Blend:
    """What one pseudo-fake was made of (for tests and for showing one)."""

    shape: str
    area: float  # the mask's mean value
    gain: tuple[float, float, float]  # per-channel colour gain of the copy
    shift: tuple[int, int]  # (dy, dx) pixels
    scale: float
    blur: float  # Gaussian sigma of the copy (0: sharpened instead)
    jpeg: int  # quality the copy went through, 0: none


def _binary_shape(rng: np.random.Generator, shape: str, h: int, w: int, area: float) -> np.ndarray:
    """A filled shape of about ``area`` of the image, somewhere inside it."""
    if shape == "blob":  # smooth noise, made at 1/8 of the size (the smoothing is most of the cost) and enlarged
        small = (max(4, h // 8), max(4, w // 8))
        noise = gaussian_filter(rng.standard_normal(small), sigma=max(small) / rng.uniform(5, 10), mode="wrap")
        noise = np.asarray(Image.fromarray(noise.astype(np.float32)).resize((w, h), Image.Resampling.BILINEAR))
        return noise > np.quantile(noise, 1 - area)
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    radius = np.sqrt(area * h * w / np.pi)  # of a circle of that area
    aspect = rng.uniform(0.6, 1.6)
    ry, rx = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
    cy, cx = rng.uniform(min(ry, h / 2), max(h - ry, h / 2)), rng.uniform(min(rx, w / 2), max(w - rx, w / 2))
    turn = rng.uniform(0, np.pi)
    if shape == "ellipse":
        angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        reach = np.ones_like(angles)
    else:  # a star-shaped polygon: random reach at sorted random angles
        angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(5, 12))))
        reach = rng.uniform(0.6, 1.3, len(angles))
    ys, xs = ry * reach * np.sin(angles), rx * reach * np.cos(angles)
    points = [(cx + x * np.cos(turn) - y * np.sin(turn), cy + x * np.sin(turn) + y * np.cos(turn)) for y, x in zip(ys, xs)]
    draw.polygon(points, fill=255)
    return np.asarray(canvas) > 127


def soft_mask(rng: np.random.Generator, h: int, w: int, area_range: tuple[float, float] = AREA_RANGE) -> tuple[np.ndarray, str]:
    """A float32 mask in [0, 1] whose mean lies in ``area_range``, soft at its edge, and its shape's name."""
    lo, hi = area_range
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    mask = np.zeros((h, w), np.float32)
    for _ in range(8):
        binary = _binary_shape(rng, shape, h, w, rng.uniform(lo, hi))
        sigma = max(1.0, min(h, w) * rng.uniform(0.01, 0.05))  # at least a pixel of soft edge
        mask = np.clip(gaussian_filter(binary.astype(np.float32), sigma=sigma, truncate=3.0), 0.0, 1.0)
        mask[mask < 1e-3] = 0.0  # the tail of the Gaussian: outside the support the image stays untouched
        if lo <= float(mask.mean()) <= hi:
            return mask, shape
    # rare: a shape cut by the border lost too much; scale the last one into the range instead of failing
    target = float(np.clip(mask.mean(), lo, hi))
    mean = float(mask.mean())
    return (np.clip(mask * (target / mean), 0, 1) if mean > 0 else np.full((h, w), target, np.float32)), shape


def _changed_copy(rng: np.random.Generator, pixels: np.ndarray) -> tuple[np.ndarray, Blend]:
    """The same picture a little different: colour, sharpness, scale, position, and maybe another JPEG."""
    h, w = pixels.shape[:2]
    img = Image.fromarray(pixels)
    scale = float(rng.uniform(0.94, 1.06))
    if abs(scale - 1) > 1e-3:  # rescale about the centre, back to h x w
        big = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
        left, top = (big.width - w) // 2, (big.height - h) // 2
        img = big.crop((left, top, left + w, top + h))
    jpeg = int(rng.integers(40, 96)) if rng.random() < 0.5 else 0
    if jpeg:
        buffer = io.BytesIO()
        img.save(buffer, format="JPEG", quality=jpeg)
        buffer.seek(0)
        img = Image.open(buffer).convert("RGB")
    copy = np.asarray(img, dtype=np.float32)
    blur = float(rng.uniform(0.4, 1.5)) if rng.random() < 0.6 else 0.0
    if blur:
        copy = gaussian_filter(copy, sigma=(blur, blur, 0))
    else:  # sharpen: unsharp mask
        copy = copy + 0.8 * (copy - gaussian_filter(copy, sigma=(1.0, 1.0, 0)))
    gain = rng.uniform(0.9, 1.1, 3)
    copy = copy * gain + rng.uniform(-8, 8, 3)
    dy, dx = (int(v) for v in rng.integers(-3, 4, 2))
    copy = np.roll(copy, (dy, dx), axis=(0, 1))
    blend = Blend("", 0.0, tuple(float(g) for g in gain), (dy, dx), scale, blur, jpeg)
    return copy, blend


def self_blend(pixels: np.ndarray, rng: np.random.Generator,
               area_range: tuple[float, float] = AREA_RANGE) -> tuple[np.ndarray, np.ndarray, Blend]:
    """(the pseudo-fake, its mask, what it was made of) from an H x W x 3 uint8 image; raises ValueError when the
    image is smaller than ``MIN_SIDE`` on a side. Outside the mask's support the result equals the input."""
    h, w = pixels.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ValueError(f"{w}x{h} pixels: too small for a blend (at least {MIN_SIDE} a side)")
    mask, shape = soft_mask(rng, h, w, area_range)
    copy, blend = _changed_copy(rng, pixels)
    m = mask[..., None]
    mixed = np.clip(np.rint(pixels * (1.0 - m) + copy * m), 0, 255).astype(np.uint8)
    out = np.where(m > 0, mixed, pixels)
    return out, mask, Blend(shape, float(mask.mean()), blend.gain, blend.shift, blend.scale, blend.blur, blend.jpeg)


def check_pseudo_fakes(share: float, train: Split) -> None:
    """Pseudo-fakes are made from real images: a training split without any has nothing to blend."""
    if share > 0 and train.targets is not None and not (np.asarray(train.targets) == 0).any():
        raise DataError(f"{train.label_file or train.folder}: no real image (target 0) in training, so "
                        f"data.pseudo_fakes = {share} has nothing to blend. Fix: set data.pseudo_fakes = 0 "
                        "(--pseudo-fakes 0), or add real images to the training split.")


def pseudo_fake(img: Image.Image, seed: int) -> Image.Image | None:
    """The loader's call: a pseudo-fake of a PIL image, or None when the image is too small to blend."""
    pixels = np.asarray(img.convert("RGB"), dtype=np.uint8)
    if min(pixels.shape[:2]) < MIN_SIDE:
        return None
    out, _, _ = self_blend(pixels, np.random.default_rng(seed))
    return Image.fromarray(out)
