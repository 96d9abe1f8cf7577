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
    OUT/families.json   (each image's families, and which were trained on)

    python scripts/make_family_data.py --out families [--seed N] [--train 384 --val 128 --test 96]

With ``--leave-out FAMILY`` it makes one fold of the leave-one-family-out rotation instead: training and
``test-seen`` fakes of the five other families (one or two manipulations each, as the known families are
made), and one test folder, ``test-FAMILY``, of the family left out.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, map_coordinates

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_sample_data as sample

UNSEEN_FAMILIES = ("copy-move", "warp", "jpeg-splice")
TEST_SETS = ("seen", *UNSEEN_FAMILIES)
ALL_FAMILIES = (*sample.KNOWN_FAMILIES, *UNSEEN_FAMILIES)


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


def manipulate(family: str, rng: np.random.Generator, image: np.ndarray, record: dict, *, sources: list,
               host_index: int, host: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """One manipulation of ``family`` on a crop (``box``) of ``sources[host_index]`` (``host``)."""
    if family == "splice":
        return sample.splice(rng, image, sources, host_index, record)
    if family == "upsampling":
        return sample.resample(rng, image, record)
    if family == "re-noising":
        return sample.renoise(rng, image, record)
    if family == "copy-move":
        return sample.copy_move(rng, image, host, box, record)
    if family == "warp":
        return local_warp(rng, image, record)
    if family == "jpeg-splice":
        return jpeg_splice(rng, image, sources, host_index, record)
    raise ValueError(f"unknown forgery family {family!r}; known: {', '.join(ALL_FAMILIES)}")


def forger(families: tuple[str, ...]):
    """A fake maker of ``families``: one or two different ones per image when there are several, drawn as
    make_sample_data's ``forge`` draws the known families (so that ``forger(KNOWN_FAMILIES)`` makes its images)."""
    def forge(rng: np.random.Generator, image: np.ndarray, record: dict, **context) -> np.ndarray:
        kinds = [0]
        if len(families) > 1:
            count = 2 if rng.random() < sample.TWO_MANIPULATION_PROB else 1
            kinds = sorted(int(k) for k in rng.choice(len(families), size=count, replace=False))
        record["families"] = [families[k] for k in kinds]
        for kind in kinds:
            image = manipulate(families[kind], rng, image, record, **context)
        return image
    return forge


def make_test_set(rng: np.random.Generator, family: str, sources: list, count: int, used_names: set[str],
                  trained: tuple[str, ...] = sample.KNOWN_FAMILIES) -> list[tuple[str, int, bytes, dict]]:
    """``count`` images of the test photographs, half of them fakes of ``family`` ("seen": the ``trained`` ones)."""
    make_fake = forger(trained if family == "seen" else (family,))
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
            image = make_fake(rng, image, record, sources=sources, host_index=host_index, host=host, box=box)
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


def make(out: Path, seed: int, counts: dict[str, int], leave_out: str | None = None) -> None:
    """The family set (training on the known families), or with ``leave_out`` one fold of the rotation."""
    if leave_out is not None and leave_out not in ALL_FAMILIES:
        raise ValueError(f"unknown forgery family {leave_out!r} to leave out; known: {', '.join(ALL_FAMILIES)}")
    trained = sample.KNOWN_FAMILIES if leave_out is None else tuple(f for f in ALL_FAMILIES if f != leave_out)
    tests = TEST_SETS if leave_out is None else ("seen", leave_out)
    rng = np.random.default_rng(seed)
    sources = sample.load_sources()
    by_split = {split: [s for s in sources if s.key in keys] for split, keys in sample.SPLIT_SOURCES.items()}
    folders = ["trainset", "valset", *(f"test-{name}" for name in ALL_FAMILIES + ("seen",))]
    for folder in folders:  # what an earlier call wrote, and nothing else
        shutil.rmtree(out / folder, ignore_errors=True)
        (out / f"{folder}_label.txt").unlink(missing_ok=True)
    used: set[str] = set()
    make_fake = None if leave_out is None else forger(trained)
    families: dict[str, list[str]] = {}
    for split, folder in (("train", "trainset"), ("val", "valset")):
        rows = sample.make_split(rng, split, by_split[split], counts[split], used, make_fake=make_fake)
        write_folder(out, folder, rows)
        families.update({f"{folder}/{row[0]}": row[3].get("families", []) for row in rows})
    for family in tests:
        rows = make_test_set(rng, family, by_split["test"], counts["test"], used, trained)
        write_folder(out, f"test-{family}", rows)
        families.update({f"test-{family}/{row[0]}": row[3].get("families", []) for row in rows})
    manifest = {"seed": seed, "trained": list(trained), "left_out": leave_out, "test_sets": list(tests),
                "images": families}
    (out / "families.json").write_text(json.dumps(manifest, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--train", type=int, default=384)
    parser.add_argument("--val", type=int, default=128)
    parser.add_argument("--test", type=int, default=96, help="images in each test folder (half of them fakes)")
    parser.add_argument("--leave-out", choices=ALL_FAMILIES,
                        help="one fold of the leave-one-family-out rotation: train on every other family")
    args = parser.parse_args(argv)
    make(args.out, args.seed, {"train": args.train, "val": args.val, "test": args.test}, args.leave_out)
    tests = TEST_SETS if args.leave_out is None else ("seen", args.leave_out)
    print(f"wrote {args.out}: trainset, valset and test-{', test-'.join(tests)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
