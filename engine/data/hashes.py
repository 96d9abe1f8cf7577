"""Perceptual hashes of a split's images, cached per file, computed by a process pool.

Torch-free (Pillow, numpy, SciPy), so the app can run it in a worker. Each image gets one 64-bit
pHash (the signs of the lowest 8x8 DCT coefficients of a 32x32 grey thumbnail, against their
median: ``imagehash.phash``'s recipe, with a bilinear thumbnail, computed for all windows of an image
in one batch) per window:

- the whole image and centre crops of 80% and 64% of each side (``CENTRE``): a rescaled or
  re-saved copy matches whole to whole, a centred crop matches one of its source's centre windows;
- a grid of off-centre windows (``GRID``: 82% and 92% of each side, independently, at 3 x 3
  positions from one corner to the other): a crop that keeps 80-95% of each side at any position,
  even rescaled to another aspect, matches one of these windows of its source. Datasets are often
  made of many crops of one photograph; a hash of centred windows alone let most of them through.

JPEGs are decoded with draft mode at about 128 px, which is most of the speed; every window is
resized from one grey copy of at most ``THUMB_LIMIT`` pixels a side (bilinear, which Pillow
antialiases when shrinking: as many crops found as with Lanczos, at less than half the time).

The hashes of a split are cached in one file per split folder under the user's cache folder
(never inside the dataset, which may be read-only), keyed per image by its size and mtime, so a
second audit of an unchanged dataset only stats its files.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

CENTRE = (1.0, 0.8, 0.64)  # side fraction of each hashed centre crop; 1.0 (the whole image) first
GRID_SIDES = (0.82, 0.92)  # side fractions (width and height independently) of the off-centre windows
GRID_STEPS = 4  # positions per axis, from one edge to the other
GRID = tuple((fx, fy, px, py) for fx in GRID_SIDES for fy in GRID_SIDES
             for px in range(GRID_STEPS) for py in range(GRID_STEPS))  # (width, height, x step, y step)
WINDOWS = CENTRE + tuple(f"{fx}x{fy}@{px},{py}" for fx, fy, px, py in GRID)  # one column of hashes each
GRID_START = len(CENTRE)  # hashes[:, GRID_START:] are the grid windows
THUMB_LIMIT = 256  # every window is cut from one grey copy of at most this many pixels a side
HASH_VERSION = 2  # bump when the hash recipe changes: older cache files are then ignored
DRAFT_SIZE = 128  # JPEGs are decoded at the smallest DCT scale with both sides at least this
CHUNK = 128  # images per task of the process pool
POOL_MIN_IMAGES = 512  # fewer images than this are hashed in this process (a pool costs ~1 s to start)

ProgressFn = Callable[[int, int], None]  # (images hashed so far, images in all)
StopFn = Callable[[], bool]


@dataclass
class SplitHashes:
    """The hashes of one split's images, in the split's order."""

    folder: Path
    names: list[str]
    hashes: np.ndarray  # (n, len(WINDOWS)) uint64, centre windows first, then the grid; rows of unhashable images are 0
    ok: np.ndarray  # (n,) bool
    errors: dict[int, str] = field(default_factory=dict)  # row -> why the image could not be hashed
    cached: int = 0  # images whose hashes came from the cache


def cache_dir() -> Path:
    """ffdv's cache folder: $FFDV_CACHE, else $XDG_CACHE_HOME/ffdv, else ~/.cache/ffdv."""
    if os.environ.get("FFDV_CACHE"):
        return Path(os.environ["FFDV_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ffdv"


def folder_key(folder: Path) -> str:
    """A file-name-safe key of a folder's absolute path."""
    return hashlib.sha1(str(Path(folder).resolve()).encode("utf-8", "surrogatepass")).hexdigest()[:20]


def _boxes(width: int, height: int) -> list[tuple[float, float, float, float]]:
    """(left, top, right, bottom) of every window, in ``WINDOWS`` order."""
    boxes = []
    for side in CENTRE:
        w, h = width * side, height * side
        boxes.append(((width - w) / 2, (height - h) / 2, (width + w) / 2, (height + h) / 2))
    for fx, fy, px, py in GRID:
        w, h = width * fx, height * fy
        left, top = (width - w) * px / (GRID_STEPS - 1), (height - h) * py / (GRID_STEPS - 1)
        boxes.append((left, top, left + w, top + h))
    return boxes


def window_hashes(img) -> np.ndarray:
    """pHash of every window of a PIL image, as uint64 (imagehash.phash's bits, most significant first)."""
    from PIL import Image
    from scipy.fft import dct

    grey = img.convert("L")
    if max(grey.size) > THUMB_LIMIT:  # a PNG or huge image: shrink once, not once per window
        scale = THUMB_LIMIT / max(grey.size)
        grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))), Image.Resampling.BOX)
    thumbs = np.stack([np.asarray(grey.resize((32, 32), Image.Resampling.BILINEAR, box=box), dtype=np.float64)
                       for box in _boxes(*grey.size)])
    coefficients = dct(dct(thumbs, axis=1, type=2), axis=2, type=2)[:, :8, :8].reshape(len(thumbs), 64)
    bits = coefficients > np.median(coefficients, axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8").reshape(-1).astype(np.uint64)


def image_hashes(path: str) -> np.ndarray:
    """pHash of each window of the image at ``path``; raises BadImage (with the reason) for an undecodable file."""
    from engine.data.images import open_rgb

    return window_hashes(open_rgb(path, min_size=DRAFT_SIZE))


def _hash_chunk(paths: list[str]) -> list[tuple[np.ndarray | None, str]]:
    """Hashes or the reason, per path (runs in a pool process)."""
    from engine.data.images import BadImage

    results: list[tuple[np.ndarray | None, str]] = []
    for path in paths:
        try:
            results.append((image_hashes(path), ""))
        except BadImage as exc:
            results.append((None, str(exc)))
        except Exception as exc:  # an image PIL chokes on in a new way: listed, never fatal
            results.append((None, f"{type(exc).__name__}: {exc}"))
    return results


def _stat(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
        return st.st_size, st.st_mtime_ns
    except OSError:
        return -1, -1


def _cache_file(folder: Path) -> Path:
    return cache_dir() / "hashes" / f"{folder_key(folder)}-v{HASH_VERSION}.npz"


def _read_cache(folder: Path) -> dict[str, tuple[int, int, np.ndarray]]:
    path = _cache_file(folder)
    try:
        with np.load(path, allow_pickle=False) as data:
            names, sizes, mtimes, hashes = data["names"], data["sizes"], data["mtimes"], data["hashes"]
    except (OSError, KeyError, ValueError):
        return {}
    if hashes.ndim != 2 or hashes.shape[1] != len(WINDOWS):
        return {}
    return {str(n): (int(s), int(m), h) for n, s, m, h in zip(names, sizes, mtimes, hashes)}


def _write_cache(folder: Path, names: list[str], stats: list[tuple[int, int]], result: SplitHashes) -> None:
    """Best effort: a cache folder that cannot be written only costs the next audit its time."""
    keep = np.flatnonzero(result.ok)
    path = _cache_file(folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, names=np.asarray([names[i] for i in keep], dtype=str),
                 sizes=np.asarray([stats[i][0] for i in keep], dtype=np.int64),
                 mtimes=np.asarray([stats[i][1] for i in keep], dtype=np.int64),
                 hashes=result.hashes[keep])
        os.replace(tmp, path)
    except OSError:
        pass


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 32))


def hash_split(
    folder: Path | str,
    names: list[str],
    workers: int = 0,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    use_cache: bool = True,
    progress_every: float = 0.2,
) -> SplitHashes | None:
    """Hashes of ``folder/name`` for every name; None when ``should_stop()`` said so.

    ``workers``: processes (0: one per core); unchanged files (same size and mtime) come from the cache.
    """
    folder = Path(folder)
    paths = [os.path.join(folder, n) for n in names]
    stats = [_stat(p) for p in paths]
    result = SplitHashes(folder, list(names), np.zeros((len(names), len(WINDOWS)), dtype=np.uint64),
                         np.zeros(len(names), dtype=bool))
    todo: list[int] = []
    cache = _read_cache(folder) if use_cache else {}
    for i, name in enumerate(names):
        hit = cache.get(name)
        if hit is not None and hit[0] == stats[i][0] and hit[1] == stats[i][1] and stats[i][0] >= 0:
            result.hashes[i] = hit[2]
            result.ok[i] = True
        else:
            todo.append(i)
    result.cached = len(names) - len(todo)
    done = result.cached
    last = time.monotonic()
    if on_progress is not None:
        on_progress(done, len(names))

    def take(rows: list[int], answers: list[tuple[np.ndarray | None, str]]) -> None:
        nonlocal done, last
        for row, (hashes, reason) in zip(rows, answers):
            if hashes is None:
                result.errors[row] = reason
            else:
                result.hashes[row] = hashes
                result.ok[row] = True
        done += len(rows)
        if on_progress is not None and time.monotonic() - last >= progress_every:
            last = time.monotonic()
            on_progress(done, len(names))

    chunks = [todo[i:i + CHUNK] for i in range(0, len(todo), CHUNK)]
    workers = workers or default_workers()
    if workers <= 1 or len(todo) < POOL_MIN_IMAGES:
        for rows in chunks:
            if should_stop is not None and should_stop():
                return None
            take(rows, _hash_chunk([paths[i] for i in rows]))
    else:
        # spawn, not fork: the caller may be a threaded app, and a forked thread's locks are not safe.
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            pending = {pool.submit(_hash_chunk, [paths[i] for i in rows]): rows for rows in chunks[: workers * 4]}
            queued = iter(chunks[workers * 4:])
            while pending:
                finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                if should_stop is not None and should_stop():
                    for future in pending:
                        future.cancel()
                    return None
                for future in finished:
                    take(pending.pop(future), future.result())
                    rows = next(queued, None)
                    if rows is not None:
                        pending[pool.submit(_hash_chunk, [paths[i] for i in rows])] = rows
    if on_progress is not None:
        on_progress(len(names), len(names))
    if use_cache and todo:
        _write_cache(folder, names, stats, result)
    return result
