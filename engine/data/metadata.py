"""What a file says about an image without decoding it: format, JPEG quality, size, colour mode, EXIF.

These are the features a detector can learn instead of the forgery (reals saved as JPEG, fakes
as PNG). The shortcut audit (``engine.data.shortcut``) and the predictions screen's slices read
them. JPEG quality is estimated from the quantisation tables (the IJG scaling of the standard
tables, as libjpeg and Pillow write them); a file without readable tables has quality None.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

# The standard (IJG / JPEG Annex K) tables, in natural (row-major) order, as Pillow reports them.
_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)
_CHROMA = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32, dtype=np.float64)
JPEG_FORMATS = frozenset({"JPEG", "MPO"})
SIZE_BUCKETS = ((256, "<256 px"), (512, "256-511 px"), (1024, "512-1023 px"))  # by the shorter side
LARGE_BUCKET = ">=1024 px"
UNKNOWN = "unknown"


def _ijg_tables(quality: int) -> tuple[np.ndarray, np.ndarray]:
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return tuple(np.clip(np.floor((t * scale + 50) / 100), 1, 255) for t in (_LUMA, _CHROMA))  # type: ignore[return-value]


_QUALITIES = np.arange(1, 101)
_REFERENCE = np.stack([np.concatenate(_ijg_tables(int(q))) for q in _QUALITIES])  # 100 x 128: luma then chroma
_CACHE: dict[tuple, int] = {}  # tables -> quality: a dataset has few distinct tables


def jpeg_quality(tables: dict | None) -> int | None:
    """The IJG quality (1-100) whose tables are nearest to these (Pillow's ``image.quantization``); None without."""
    if not tables or 0 not in tables or len(tables[0]) != 64:
        return None
    key = (tuple(tables[0]), tuple(tables[1]) if 1 in tables else ())
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    luma = np.asarray(tables[0], dtype=np.float64)
    distance = np.abs(_REFERENCE[:, :64] - luma).sum(axis=1)
    if 1 in tables and len(tables[1]) == 64:
        distance += np.abs(_REFERENCE[:, 64:] - np.asarray(tables[1], dtype=np.float64)).sum(axis=1)
    quality = int(_QUALITIES[int(np.argmin(distance))])
    if len(_CACHE) < 10_000:
        _CACHE[key] = quality
    return quality


@dataclass(frozen=True)
class ImageMeta:
    """One file's metadata; ``format`` is "unreadable" for a file Pillow cannot open (other fields then 0/None)."""

    format: str
    quality: int | None  # estimated JPEG quality; None for other formats or unreadable tables
    width: int
    height: int
    file_size: int
    mode: str
    exif: bool

    @property
    def aspect(self) -> float:
        return self.width / self.height if self.height else 0.0

    @property
    def size_bucket(self) -> str:
        if not self.width:
            return UNKNOWN
        side = min(self.width, self.height)
        return next((label for limit, label in SIZE_BUCKETS if side < limit), LARGE_BUCKET)

    @property
    def quality_label(self) -> str:
        if self.format not in JPEG_FORMATS:
            return "not JPEG"
        return f"Q{self.quality}" if self.quality is not None else UNKNOWN


def read_meta(path: str | os.PathLike) -> ImageMeta:
    """The header's facts (no pixel is decoded); never raises for a bad file."""
    try:
        size = os.stat(path).st_size
        with Image.open(path) as img:
            fmt = str(img.format)
            quality = None
            if fmt in JPEG_FORMATS:
                try:
                    quality = jpeg_quality(getattr(img, "quantization", None))
                except Exception:  # damaged tables: quality unknown, not a crash
                    quality = None
            exif = bool(img.info.get("exif")) or ("exif" in img.info)
            return ImageMeta(fmt, quality, img.width, img.height, size, img.mode, exif)
    except Exception:
        return ImageMeta("unreadable", None, 0, 0, 0, "", False)
