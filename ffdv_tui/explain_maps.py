"""Class-activation maps for the preview: which checkpoint explains a validation, the engine job, the cache.

The app never loads torch: a map is an ``ffdv explain --progress json`` job (a subprocess,
like evaluate). Its overlays are kept per checkpoint and image, so flipping between an image
and its map is instant. The key holds the checkpoint's resolved path, size and modification
time, so a checkpoint rewritten since (a new best) is explained again, never shown stale.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image

from engine.contract.jobs import JobError, run_engine_job

THUMBNAIL = 384
CACHE_SIZE = 256


@dataclass(frozen=True)
class MapKey:
    checkpoint: str  # resolved path
    size: int
    mtime_ns: int
    image: str


def checkpoint_for(run_dir: Path | None, epoch: int | None, fallback: Path | None = None) -> Path | None:
    """The checkpoint a validation was made with: the run's epoch-NNN if it was kept, else the run's best; an
    evaluation names its own (``fallback``)."""
    if run_dir is not None:
        folder = run_dir / "checkpoints"
        for name in ([f"epoch-{epoch:03d}.safetensors"] if epoch else []) + ["best.safetensors"]:
            if (folder / name).exists():
                return folder / name
    return fallback


def map_key(checkpoint: Path, image: Path) -> MapKey | str:
    """The cache key of an image's map under this checkpoint as it is now, or why there is none."""
    try:
        resolved = checkpoint.resolve(strict=True)
        stat = resolved.stat()
    except OSError as exc:
        return f"{checkpoint}: {exc.strerror or exc}"
    return MapKey(str(resolved), stat.st_size, stat.st_mtime_ns, str(image))


class MapCache:
    """Overlays (or the reason there is none) by MapKey, least recently used out first."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self._items: OrderedDict[MapKey, Image.Image | str] = OrderedDict()
        self._folder = tempfile.TemporaryDirectory(prefix="ffdv-maps-")  # the jobs' files; gone with the cache

    @property
    def folder(self) -> Path:
        return Path(self._folder.name)

    def get(self, key: MapKey) -> Image.Image | str | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: MapKey, item: Image.Image | str) -> None:
        self._items[key] = item
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


def _thumbnail(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img = img.convert("RGB")
    img.thumbnail((THUMBNAIL, THUMBNAIL))
    return img


def compute_maps(checkpoint: Path, keys: list[MapKey], out_dir: Path, method: str = "gradcam",
                 should_stop=None) -> dict[MapKey, Image.Image | str]:
    """Explain the keys' images (all in one folder) with one engine job: overlay thumbnails, or reasons."""
    folder = Path(keys[0].image).parent
    names = [Path(k.image).name for k in keys]
    if any("," in name for name in names):
        return {k: "this image's name holds a comma, which `ffdv explain --images` cannot take" for k in keys}
    out = out_dir / f"{os.getpid()}-{time.monotonic_ns()}"
    try:
        result = run_engine_job(["explain", "--checkpoint", str(checkpoint), "--data", str(folder), "--images",
                                 ",".join(names), "--method", method, "--out", str(out)], should_stop=should_stop)
    except JobError as exc:
        return {k: f"no map: {exc}" for k in keys}
    rows = pd.read_csv(result.csv, dtype={"img_name": str}, keep_default_na=False).set_index("img_name")
    unreadable = getattr(result, "unreadable", {}) or {}
    found: dict[MapKey, Image.Image | str] = {}
    for key, name in zip(keys, names, strict=True):
        if name in rows.index:
            found[key] = _thumbnail(out / rows.loc[name, "overlay"])
        else:
            found[key] = f"{name}: {unreadable.get(name, 'no map was written')}"
    return found
