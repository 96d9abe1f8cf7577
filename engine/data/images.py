"""Decoding any PIL-readable image to 8-bit RGB, fast, at about the size it will be used.

Torch-free. JPEGs are decoded with PIL's draft mode (the decoder scales by 1/2,
1/4 or 1/8 in the DCT), which is most of the speed of the input pipeline on
FFDI-sized images. Grayscale, palette, RGBA, CMYK and 16-bit images are converted;
a file that cannot be decoded raises BadImage with the reason.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

# PIL refuses only above 2 gigapixels at open, so a huge JPEG can still be opened and reduced by its
# decoder (draft); what is decoded in full is bounded by ``max_pixels`` below (data.max_image_mpix).
Image.MAX_IMAGE_PIXELS = 1_000_000_000
DEFAULT_MAX_PIXELS = 100_000_000  # 100 Mpx: 300 MB of RGB per decode, in every loader worker at once
ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is a bad image, reported and skipped


class BadImage(Exception):
    """An image file that exists but cannot be decoded."""


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or (mode == "I" and arr.max() <= 65535 and arr.min() >= 0) else None
        if top is None:  # 32-bit or float: stretch the range that is there
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / (hi - lo or 1.0)
        else:
            arr = arr / top
        gray = Image.fromarray(np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
        return gray.convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # going through RGBA keeps the palette's colours for transparent pixels
    return img.convert("RGB")


def too_large(width: int, height: int, max_pixels: int) -> str | None:
    """Why an image of this size is not decoded, or None."""
    if max_pixels <= 0 or width * height <= max_pixels:
        return None
    return (f"{width}x{height} pixels ({width * height / 1e6:.0f} Mpx) is above the limit of {max_pixels / 1e6:g} Mpx "
            f"(decoding it would take {width * height * 3 / 1e9:.1f} GB); shrink the image, or raise "
            "data.max_image_mpix")


def open_rgb(path: Path | str, min_size: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``path`` to an RGB image whose sides are at least ``min_size`` where the source allows.

    JPEGs are reduced while decoding (draft); anything still above ``max_pixels`` (0: no limit) is
    refused with the reason before a byte of it is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
            if min_size and img.format == "JPEG":
                img.draft("RGB", (min_size, min_size))
            reason = too_large(*img.size, max_pixels)
            if reason:
                raise BadImage(reason)
            img.load()
            return _to_rgb(img)
    except FileNotFoundError:
        raise BadImage("file not found") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, OSError) and Path(path).is_file() and Path(path).stat().st_size == 0:
            reason = "empty file (0 bytes)"
        raise BadImage(reason) from None
