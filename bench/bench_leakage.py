"""The leakage audit on crops: how many planted off-centre crops it finds, how many unrelated pictures it pairs,
and what it costs at 100,000 images.

    python bench/bench_leakage.py [--images 100000] [--seeds 1 2 3]

Pictures: the ninths (3 x 3 tiles) of scikit-image's bundled photographs at 512 px, no two sharing a pixel.
Half are training pictures; each planted copy is a crop keeping 80-95% of each side at a random position,
rescaled to a square of 0.8-1.2 times its side and re-saved as JPEG 75-92 (how datasets are cut from one
photograph); the other half are unrelated pictures that must not be paired. Time: CPU seconds per image for
decoding and hashing (measured on the tiles, saved as JPEG), and the search at ``--images`` images (80% training,
20% validation) timed on hashes of that shape, so the total is hashing x images / cores + search.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from report import report  # noqa: E402
from test_leakage import PHOTOS, off_centre_crop  # noqa: E402

from engine.data.hashes import WINDOWS, hash_split, window_hashes  # noqa: E402
from engine.data.leakage import DEFAULT_THRESHOLD  # noqa: E402
from engine.data.neighbours import near_pairs  # noqa: E402


def tiles(side: int = 512) -> list[Image.Image]:
    from skimage import data

    out = []
    for name in PHOTOS:
        pixels = getattr(data, name)()
        if pixels.dtype != np.uint8:
            pixels = (pixels * (255.0 / max(float(pixels.max()), 1e-9))).astype(np.uint8)
        pixels = np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels[..., :3]
        img = Image.fromarray(pixels)
        img = img.resize((round(img.width * side / max(img.size)), round(img.height * side / max(img.size))))
        w, h = img.width // 3, img.height // 3
        out += [img.crop((x, y, x + w, y + h)) for x in range(0, 3 * w, w) for y in range(0, 3 * h, h)]
    return out


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer)


def rates(pictures: list[Image.Image], seed: int, crops: int = 200) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pictures))
    train = [pictures[i] for i in order[: len(order) // 2]]
    unrelated = [pictures[i] for i in order[len(order) // 2:]]
    sources = rng.integers(0, len(train), crops)
    queries = [jpeg(off_centre_crop(rng, train[s]), int(rng.integers(75, 93))) for s in sources]
    queries += [jpeg(u, 85) for u in unrelated]
    base = np.stack([window_hashes(jpeg(t, 92)) for t in train])
    query = np.stack([window_hashes(q) for q in queries])
    qi, bi, _ = near_pairs(query, np.ones(len(query), bool), base, np.ones(len(base), bool), DEFAULT_THRESHOLD)
    found = sum(bool(((qi == k) & (bi == sources[k])).any()) for k in range(crops))
    centre = near_pairs(query[:, :3], np.ones(len(query), bool), base[:, :3], np.ones(len(base), bool), DEFAULT_THRESHOLD)
    found_centre = sum(bool(((centre[0] == k) & (centre[1] == sources[k])).any()) for k in range(crops))
    false = len(set(qi[qi >= crops].tolist()))
    return {f"seed {seed}: planted crops found, %": 100.0 * found / crops,
            f"seed {seed}: found by the centre windows alone, %": 100.0 * found_centre / crops,
            f"seed {seed}: unrelated pictures paired, %": 100.0 * false / len(unrelated)}


def hashing_cost(pictures: list[Image.Image], tmp: Path) -> float:
    """CPU seconds per image to decode and hash it (one process, no cache)."""
    names = []
    for i, img in enumerate(pictures):
        img.convert("RGB").save(tmp / f"{i}.jpg", quality=90)
        names.append(f"{i}.jpg")
    start = time.process_time()
    result = hash_split(tmp, names, workers=1, use_cache=False)
    assert result is not None and result.ok.all()
    return (time.process_time() - start) / len(names)


def search_seconds(images: int) -> float:
    rng = np.random.default_rng(0)
    train, val = int(images * 0.8), images - int(images * 0.8)
    base = rng.integers(0, 2**63, (train, len(WINDOWS)), dtype=np.uint64)
    query = rng.integers(0, 2**63, (val, len(WINDOWS)), dtype=np.uint64)
    start = time.perf_counter()
    near_pairs(query, np.ones(val, bool), base, np.ones(train, bool), DEFAULT_THRESHOLD)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--json", type=Path, default=REPO / ".bench" / "leakage.json")
    args = parser.parse_args()
    pictures = tiles()
    results: dict[str, float | int | str] = {"pictures": len(pictures), "windows hashed per image": len(WINDOWS),
                                            "cores": os.cpu_count() or 1}
    for seed in args.seeds:
        results.update(rates(pictures, seed))
    with tempfile.TemporaryDirectory() as tmp:
        per_image = hashing_cost(pictures, Path(tmp))
    results["decode + hash, CPU ms per image"] = per_image * 1000
    search = search_seconds(args.images)
    results[f"search at {args.images:,} images (80% train, 20% val), s"] = search
    results[f"audit at {args.images:,} images on this machine's cores, s (hash / cores + search)"] = (
        per_image * args.images / (os.cpu_count() or 1) + search)
    report(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
