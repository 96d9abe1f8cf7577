"""Perceptual hashes of a split's images, cached per file, computed by a process pool.

Torch-free (Pillow, numpy, imagehash), so the app can run it in a worker. Each image gets one
64-bit pHash (``imagehash.phash``: the signs of the lowest 8x8 DCT coefficients of a 32x32 grey
thumbnail) per window: the whole image and centre crops of 80% and 64% of each side. A rescaled or
re-saved JPEG copy matches on the whole image; a centred crop of another image matches one of that
image's windows (tests/test_leakage.py plants both). JPEGs are decoded with draft mode at about
128 px, which is most of the speed.

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

WINDOWS = (1.0, 0.8, 0.64)  # side fraction of each hashed centre crop; 1.0 (the whole image) first
HASH_VERSION = 1  # bump when the hash recipe changes: older cache files are then ignored
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
    hashes: np.ndarray  # (n, len(WINDOWS)) uint64; rows of unhashable images are 0
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


def _bits_to_int(bits: np.ndarray) -> int:
    return int.from_bytes(np.packbits(bits.reshape(-1)).tobytes(), "big")


def image_hashes(path: str) -> np.ndarray:
    """pHash of each window of the image at ``path``; raises BadImage (with the reason) for an undecodable file."""
    import imagehash
    from PIL import Image

    from engine.data.images import open_rgb

    img = open_rgb(path, min_size=DRAFT_SIZE).convert("L")
    width, height = img.size
    out = np.zeros(len(WINDOWS), dtype=np.uint64)
    for i, side in enumerate(WINDOWS):
        if side < 1.0:
            w, h = max(1, round(width * side)), max(1, round(height * side))
            left, top = (width - w) // 2, (height - h) // 2
            window = img.crop((left, top, left + w, top + h))
        else:
            window = img
        if max(window.size) > 4 * DRAFT_SIZE:  # a PNG or huge image: shrink once before phash's own resize
            window = window.resize((DRAFT_SIZE, DRAFT_SIZE), Image.Resampling.BOX)
        out[i] = _bits_to_int(imagehash.phash(window).hash)
    return out


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
