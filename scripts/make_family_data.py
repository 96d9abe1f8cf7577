"""Generate a forgery-family benchmark set: training on some forgery families, a test folder for each family.

Why: a detector that learned one generator's artefacts is at chance on a new kind of forgery, and the
bundled sample data has only one family outside training. This set, made like ``sample_data/`` (crops of
the photographs bundled with scikit-image and scikit-learn, JPEG-saved; source-disjoint splits:
scripts/make_sample_data.py), trains on the known families (splice, upsampling, re-noising) and tests on
photographs never seen in training, once with the known families and once per family absent from training:

* ``copy-move``: a region of the same photograph from elsewhere, at full resolution;
* ``warp``: a liquify-style local warp: the pixels of a soft region pushed along a smooth random field;
* ``jpeg-splice``: a colour-matched region of another photograph that went through a low-quality JPEG
  (15-40) before it was pasted, at full resolution (no up-sampling, unlike the known splice).

Layout (each test folder with its label file beside it, as ``ffdv evaluate --data`` takes it)::

    OUT/trainset/ trainset_label.txt  valset/ valset_label.txt
    OUT/test-seen/ test-seen_label.txt  OUT/test-copy-move/ ...  OUT/test-warp/ ...  OUT/test-jpeg-splice/ ...

    python scripts/make_family_data.py --out families [--seed N] [--train 384 --val 128 --test 96]
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, map_coordinates

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_sample_data as sample

UNSEEN_FAMILIES = ("copy-move", "warp", "jpeg-splice")
TEST_SETS = ("seen", *UNSEEN_FAMILIES)


def local_warp(rng: np.random.Generator, image: np.ndarray, record: dict) -> np.ndarray:
    """Push the pixels of a soft region along a smooth random field of 3-8 pixels (liquify)."""
    height, width = image.shape[:2]
    mask = sample.feathered_mask(rng, (height, width), elliptical=True)
    strength = rng.uniform(3.0, 8.0)
    field = [gaussian_filter(rng.standard_normal((height, width)), sigma=min(height, width) / 8) for _ in range(2)]
    field = [f / max(float(np.abs(f).max()), 1e-9) * strength * mask for f in field]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    coords = [yy + field[0], xx + field[1]]
    warped = np.stack([map_coordinates(image[..., c], coords, order=1, mode="reflect") for c in range(3)], axis=-1)
    return sample.blend(image, warped, mask)


def jpeg_splice(rng: np.random.Generator, image: np.ndarray, sources: list, host_index: int, record: dict) -> np.ndarray:
    """Blend in a colour-matched region of another photograph that went through a JPEG of quality 15-40 first."""
    donor_index = int(rng.choice([i for i in range(len(sources)) if i != host_index]))
    donor = sources[donor_index].pixels
    record["donor"] = sources[donor_index].key
    size = (image.shape[1], image.shape[0])
    patch = sample.crop_and_resize(donor, sample.random_crop(rng, donor, size), size)
    mask = sample.feathered_mask(rng, image.shape[:2], elliptical=True)
    patch = sample.transfer_colour(patch, image, mask)
    buffer = io.BytesIO()
    Image.fromarray(sample.to_uint8(patch)).save(buffer, format="JPEG", quality=int(rng.integers(15, 41)))
    buffer.seek(0)
    return sample.blend(image, np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float64), mask)


def make_test_set(rng: np.random.Generator, family: str, sources: list, count: int,
                  used_names: set[str]) -> list[tuple[str, int, bytes, dict]]:
    """``count`` images of the test photographs, half of them fakes of ``family`` ("seen": the known families)."""
    labels = rng.permutation(np.arange(count) < count // 2).astype(int)
    rows = []
    for label in labels:
        host_index = int(rng.integers(len(sources)))
        host = sources[host_index].pixels
        size = sample.random_output_size(rng)
        box = sample.random_crop(rng, host, size)
        image = sample.crop_and_resize(host, box, size)
        record: dict = {"split": f"test-{family}", "target": int(label), "source": sources[host_index].key}
        if label == 1:
            record["families"] = [family] if family != "seen" else []
            if family == "seen":
                image = sample.forge(rng, image, sources, host_index, record)
            elif family == "copy-move":
                image = sample.copy_move(rng, image, host, box, record)
            elif family == "warp":
                image = local_warp(rng, image, record)
            else:
                image = partial(jpeg_splice, sources=sources, host_index=host_index)(rng, image, record=record)
        quality = int(rng.integers(sample.QUALITY_RANGE[0], sample.QUALITY_RANGE[1] + 1))
        name = rng.bytes(8).hex() + ".jpg"
        while name in used_names:
            name = rng.bytes(8).hex() + ".jpg"
        used_names.add(name)
        rows.append((name, int(label), sample.encode_jpeg(image, quality), record))
    return rows


def write_folder(out: Path, folder: str, rows: list[tuple[str, int, bytes, dict]]) -> None:
    (out / folder).mkdir(parents=True)
    for name, _, jpeg, _ in rows:
        (out / folder / name).write_bytes(jpeg)
    lines = ["img_name,target"] + [f"{name},{label}" for name, label, _, _ in rows]
    (out / f"{folder}_label.txt").write_text("\n".join(lines) + "\n", newline="\n")


def make(out: Path, seed: int, counts: dict[str, int]) -> None:
    rng = np.random.default_rng(seed)
    sources = sample.load_sources()
    by_split = {split: [s for s in sources if s.key in keys] for split, keys in sample.SPLIT_SOURCES.items()}
    folders = ["trainset", "valset", *(f"test-{name}" for name in TEST_SETS)]
    for folder in folders:  # what an earlier call wrote, and nothing else
        shutil.rmtree(out / folder, ignore_errors=True)
        (out / f"{folder}_label.txt").unlink(missing_ok=True)
    used: set[str] = set()
    for split, folder in (("train", "trainset"), ("val", "valset")):
        rows = sample.make_split(rng, split, by_split[split], counts[split], used)  # known families only
        write_folder(out, folder, rows)
    for family in TEST_SETS:
        write_folder(out, f"test-{family}", make_test_set(rng, family, by_split["test"], counts["test"], used))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--train", type=int, default=384)
    parser.add_argument("--val", type=int, default=128)
    parser.add_argument("--test", type=int, default=96, help="images in each test folder (half of them fakes)")
    args = parser.parse_args(argv)
    make(args.out, args.seed, {"train": args.train, "val": args.val, "test": args.test})
    print(f"wrote {args.out}: trainset, valset and test-{', test-'.join(TEST_SETS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
