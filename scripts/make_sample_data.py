"""Generate the small, committed ``sample_data/`` set for ffdv-tui.

Why: the app and its tests need a real-looking FFDI-layout data set
(``trainset/``, ``valset/``, ``testset/`` plus ``*_label.txt``) that ships
with the repository, fits in a few megabytes, needs no download, and is
learnable by a tiny CNN trained from scratch on a CPU in under two minutes.

What: every image is a random crop of a photograph bundled with
scikit-image or scikit-learn, resized to a random size and saved as JPEG
with a random quality.  The splits are source-disjoint: each photograph
belongs to exactly one split (SPLIT_SOURCES), so validation and test
measure how a detector does on photographs it has never seen.  Real and
fake images share exactly the same crop, size and quality distributions;
a fake additionally receives one or two local, feather-masked
forgery-like manipulations before the JPEG save:

* splice (face-swap style): an elliptical patch from another photograph,
  rendered at a lower resolution and upscaled, colour-transferred
  (per-channel mean/std in LAB) to the host region;
* upsampling: the region is downscaled 2-4x and upscaled back
  (nearest or bilinear);
* re-noising: the region is Gaussian-blurred and fresh Gaussian noise added.

Half of the test split's fakes get instead a family no other split has:

* copy-move: a region of the same photograph, from elsewhere in it, pasted
  over the crop at full resolution (no resampling, no noise change).

``sources.json`` records, per image, its split, label, source photograph,
splice donor, forgery families, crop box and JPEG quality; tests check from
it that the splits share no photograph.

File names are random hex derived from the seed, so they leak neither the
label nor the source photograph.  The output is byte-identical for a given
seed and counts (with the same Pillow/libjpeg build).

Usage::

    python scripts/make_sample_data.py [--out sample_data] [--seed N]
                                       [--train N --val N --test N]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import color, data, filters
from sklearn.datasets import load_sample_images

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "sample_data"
DEFAULT_SEED = 20240601
DEFAULT_COUNTS = {"train": 384, "val": 128, "test": 88}
SPLIT_DIRS = {"train": "trainset", "val": "valset", "test": "testset"}
# Which photographs each split is made of: no photograph is in two splits.
SPLIT_SOURCES = {
    "train": ("astronaut", "coffee", "rocket", "camera", "brick", "grass", "immunohistochemistry", "china.jpg"),
    "val": ("chelsea", "coins", "gravel", "hubble_deep_field"),
    "test": ("flower.jpg", "clock", "cell", "retina"),
}
KNOWN_FAMILIES = ("splice", "upsampling", "re-noising")
UNSEEN_FAMILY = "copy-move"  # only in the test split, for half of its fakes
SKLEARN_LICENCES = {  # as stated in load_sample_images().DESCR
    "china.jpg": "CC BY 2.0, some rights reserved by danielbuechele (Flickr)",
    "flower.jpg": "CC BY 2.0, Flickr user vultilion",
}

SIDE_RANGE = (136, 196)  # output side length in pixels
ASPECT_RANGE = (0.75, 1.33)  # output width / height
MAX_CROP_SCALE = 2.5  # crop side / output side (>= 1: crops are downscaled)
QUALITY_RANGE = (70, 95)  # JPEG quality, inclusive
REGION_AREA_RANGE = (0.2, 0.45)  # manipulated fraction of the image
TWO_MANIPULATION_PROB = 0.4


@dataclass(frozen=True)
class Source:
    """A bundled photograph and where it comes from."""

    name: str  # function that loads it
    licence: str  # as stated by the package
    pixels: np.ndarray  # HxWx3 uint8 RGB
    key: str = ""  # short name, as in SPLIT_SOURCES


def _skimage_source(name: str, licence: str) -> Source:
    image = getattr(data, name)()
    if image.dtype != np.uint8:  # float or bool images: to 8-bit
        image = np.clip(image.astype(np.float64) * (255.0 / max(float(image.max()), 1e-9)), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return Source(f"skimage.data.{name}()", licence, image[..., :3], name)


def load_sources() -> list[Source]:
    """Load the bundled photographs (no network access needed)."""
    sources = [
        _skimage_source("astronaut", "public domain (NASA), no known copyright restrictions"),
        _skimage_source("chelsea", "CC0 by the photographer (Stefan van der Walt)"),
        _skimage_source("coffee", "CC0 by the photographer (Rachel Michetti)"),
        _skimage_source("rocket", "public domain (SpaceX)"),
        _skimage_source("hubble_deep_field", "public domain (NASA)"),
        _skimage_source("immunohistochemistry", "no known copyright restrictions"),
        _skimage_source("camera", "CC0 by the photographer (Lav Varshney)"),
        _skimage_source("coins", "no known copyright restrictions"),
        _skimage_source("brick", "CC0 (CC0Textures)"),
        _skimage_source("grass", "CC0 (CC0Textures)"),
        _skimage_source("gravel", "CC0 (CC0Textures)"),
        _skimage_source("clock", "public domain by the photographer (Stefan van der Walt)"),
        _skimage_source("retina", "CC0 1.0 Universal, Public Domain Dedication"),
        _skimage_source("cell", "CC0, dedicated to the public domain"),
    ]
    bunch = load_sample_images()
    for filename, image in zip(bunch.filenames, bunch.images):
        stem = Path(filename).name
        name = f"sklearn.datasets.load_sample_images() {stem}"
        sources.append(Source(name, SKLEARN_LICENCES[stem], image, stem))
    return sources


def random_output_size(rng: np.random.Generator) -> tuple[int, int]:
    """Draw (width, height) with sides in SIDE_RANGE and a bounded aspect."""
    while True:
        width, height = rng.integers(SIDE_RANGE[0], SIDE_RANGE[1] + 1, size=2)
        if ASPECT_RANGE[0] <= width / height <= ASPECT_RANGE[1]:
            return int(width), int(height)


def random_crop(
    rng: np.random.Generator, source: np.ndarray, size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Crop box (left, top, right, bottom) with the aspect of ``size``."""
    width, height = size
    src_h, src_w = source.shape[:2]
    max_scale = min(MAX_CROP_SCALE, src_w / width, src_h / height)
    scale = rng.uniform(1.0, max_scale)
    crop_w, crop_h = round(width * scale), round(height * scale)
    left = int(rng.integers(0, src_w - crop_w + 1))
    top = int(rng.integers(0, src_h - crop_h + 1))
    return left, top, left + crop_w, top + crop_h


def crop_and_resize(
    source: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int]
) -> np.ndarray:
    """Cut ``box`` out of ``source`` and resize it to ``size`` (float RGB)."""
    left, top, right, bottom = box
    patch = Image.fromarray(source[top:bottom, left:right])
    resized = patch.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.float64)


def feathered_mask(
    rng: np.random.Generator, shape: tuple[int, int], elliptical: bool
) -> np.ndarray:
    """Soft mask in [0, 1] covering REGION_AREA_RANGE of an HxW image."""
    height, width = shape
    area = rng.uniform(*REGION_AREA_RANGE) * height * width
    aspect = rng.uniform(0.7, 1.4)
    if elliptical:  # an ellipse covers pi/4 of its bounding box
        area /= np.pi / 4
    box_h = min(height - 2, np.sqrt(area / aspect))
    box_w = min(width - 2, area / box_h)
    cy = rng.uniform(box_h / 2, height - box_h / 2)
    cx = rng.uniform(box_w / 2, width - box_w / 2)
    yy, xx = np.mgrid[0:height, 0:width]
    dy, dx = (yy - cy) / (box_h / 2), (xx - cx) / (box_w / 2)
    if elliptical:
        hard = dy**2 + dx**2 <= 1.0
    else:
        hard = (np.abs(dy) <= 1.0) & (np.abs(dx) <= 1.0)
    sigma = rng.uniform(2.0, 5.0)
    return filters.gaussian(hard.astype(np.float64), sigma=sigma)


def transfer_colour(patch: np.ndarray, host: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Match ``patch``'s per-channel LAB mean/std to ``host`` inside ``mask``."""
    inside = mask > 0.5
    patch_lab = color.rgb2lab(patch / 255.0)
    host_lab = color.rgb2lab(host / 255.0)
    p_mean, p_std = patch_lab[inside].mean(axis=0), patch_lab[inside].std(axis=0)
    h_mean, h_std = host_lab[inside].mean(axis=0), host_lab[inside].std(axis=0)
    # A flat channel (e.g. the chroma of a grayscale donor) is only shifted.
    gain = np.where(p_std > 1.0, h_std / np.maximum(p_std, 1.0), 1.0)
    matched = (patch_lab - p_mean) * np.clip(gain, 0.25, 4.0) + h_mean
    matched[..., 0] = np.clip(matched[..., 0], 0.0, 100.0)
    with warnings.catch_warnings():  # out-of-gamut colours are clipped, as intended
        warnings.filterwarnings("ignore", message=".*negative Z values", category=UserWarning)
        rgb = color.lab2rgb(matched)
    return np.clip(rgb, 0.0, 1.0) * 255.0


def render_at_low_resolution(rng: np.random.Generator, patch: np.ndarray) -> np.ndarray:
    """Mimic a generator working below the host resolution: shrink, then upscale."""
    height, width = patch.shape[:2]
    factor = rng.uniform(1.5, 3.0)
    small_size = (round(width / factor), round(height / factor))
    pil = Image.fromarray(to_uint8(patch)).resize(small_size, Image.Resampling.BILINEAR)
    return np.asarray(pil.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float64)


def splice(
    rng: np.random.Generator, image: np.ndarray, sources: list[Source], host_index: int, record: dict
) -> np.ndarray:
    """Blend in a low-resolution, colour-matched elliptical patch of another photograph of the same split."""
    donor_index = int(rng.choice([i for i in range(len(sources)) if i != host_index]))
    donor = sources[donor_index].pixels
    record["donor"] = sources[donor_index].key
    size = (image.shape[1], image.shape[0])
    patch = crop_and_resize(donor, random_crop(rng, donor, size), size)
    patch = render_at_low_resolution(rng, patch)
    mask = feathered_mask(rng, image.shape[:2], elliptical=True)
    patch = transfer_colour(patch, image, mask)
    return blend(image, patch, mask)


def resample(rng: np.random.Generator, image: np.ndarray, record: dict) -> np.ndarray:
    """Blend in a region that was downscaled 2-4x and upscaled back."""
    height, width = image.shape[:2]
    factor = rng.uniform(2.0, 4.0)
    small_size = (round(width / factor), round(height / factor))
    method = Image.Resampling.NEAREST if rng.random() < 0.5 else Image.Resampling.BILINEAR
    pil = Image.fromarray(to_uint8(image))
    degraded = pil.resize(small_size, Image.Resampling.BILINEAR).resize((width, height), method)
    mask = feathered_mask(rng, (height, width), elliptical=rng.random() < 0.5)
    return blend(image, np.asarray(degraded, dtype=np.float64), mask)


def renoise(rng: np.random.Generator, image: np.ndarray, record: dict) -> np.ndarray:
    """Blend in a region that was Gaussian-blurred and then re-noised."""
    sigma = rng.uniform(1.2, 2.5)
    blurred = filters.gaussian(image, sigma=sigma, channel_axis=-1, preserve_range=True)
    noise_sigma = rng.uniform(5.0, 12.0)
    noisy = blurred + rng.normal(0.0, noise_sigma, size=image.shape[:2])[..., None]
    mask = feathered_mask(rng, image.shape[:2], elliptical=rng.random() < 0.5)
    return blend(image, noisy, mask)


def copy_move(rng: np.random.Generator, image: np.ndarray, host: np.ndarray, box: tuple[int, int, int, int],
              record: dict) -> np.ndarray:
    """Blend in a region of the same photograph from elsewhere, at the crop's own scale (the unseen family)."""
    height, width = image.shape[:2]
    crop_w, crop_h = box[2] - box[0], box[3] - box[1]
    src_h, src_w = host.shape[:2]
    for _ in range(20):  # another place of the photograph, not overlapping the crop too much
        left = int(rng.integers(0, src_w - crop_w + 1))
        top = int(rng.integers(0, src_h - crop_h + 1))
        if abs(left - box[0]) > crop_w // 3 or abs(top - box[1]) > crop_h // 3:
            break
    other = crop_and_resize(host, (left, top, left + crop_w, top + crop_h), (width, height))
    mask = feathered_mask(rng, (height, width), elliptical=rng.random() < 0.5)
    return blend(image, other, mask)


def blend(image: np.ndarray, other: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return image * (1.0 - mask[..., None]) + other * mask[..., None]


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def forge(
    rng: np.random.Generator, image: np.ndarray, sources: list[Source], host_index: int, record: dict
) -> np.ndarray:
    """Apply one or two different local manipulations of the known families."""
    manipulations = (partial(splice, sources=sources, host_index=host_index), resample, renoise)
    count = 2 if rng.random() < TWO_MANIPULATION_PROB else 1
    kinds = sorted(int(k) for k in rng.choice(len(manipulations), size=count, replace=False))
    record["families"] = [KNOWN_FAMILIES[k] for k in kinds]
    for kind in kinds:
        image = manipulations[kind](rng, image, record=record)
    return image


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def make_split(
    rng: np.random.Generator,
    split: str,
    sources: list[Source],
    count: int,
    used_names: set[str],
    make_fake=None,
) -> list[tuple[str, int, bytes, dict]]:
    """Generate ``count`` (name, label, jpeg, record) rows in random order, half of them fake, from ``sources`` only.

    ``make_fake(rng, image, record, sources=, host_index=, host=, box=)``, where given, makes the fakes instead
    of the known families (scripts/make_family_data.py's folds of other families)."""
    labels = rng.permutation(np.arange(count) < count // 2).astype(int)
    unseen = rng.permutation(np.arange(count // 2) < count // 4) if split == "test" else np.zeros(count // 2, bool)
    used_boxes: set[tuple[int, tuple[int, int, int, int]]] = set()
    rows = []
    fakes = 0
    for label in labels:
        host_index = int(rng.integers(len(sources)))
        host = sources[host_index].pixels
        size = random_output_size(rng)
        box = random_crop(rng, host, size)
        while (host_index, box) in used_boxes:  # never reuse a crop box
            box = random_crop(rng, host, size)
        used_boxes.add((host_index, box))
        image = crop_and_resize(host, box, size)
        record: dict = {"split": split, "target": int(label), "source": sources[host_index].key, "box": list(box)}
        if label == 1:
            if unseen[fakes]:
                record["families"] = [UNSEEN_FAMILY]
                image = copy_move(rng, image, host, box, record)
            elif make_fake is not None:
                image = make_fake(rng, image, record, sources=sources, host_index=host_index, host=host, box=box)
            else:
                image = forge(rng, image, sources, host_index, record)
            fakes += 1
        quality = int(rng.integers(QUALITY_RANGE[0], QUALITY_RANGE[1] + 1))
        record["quality"] = quality
        name = rng.bytes(8).hex() + ".jpg"
        while name in used_names:
            name = rng.bytes(8).hex() + ".jpg"
        used_names.add(name)
        rows.append((name, int(label), encode_jpeg(image, quality), record))
    return rows


def clear_outputs(out: Path) -> None:
    """Remove what a previous run wrote into ``out`` (and nothing else)."""
    for directory in SPLIT_DIRS.values():
        shutil.rmtree(out / directory, ignore_errors=True)
        (out / f"{directory}_label.txt").unlink(missing_ok=True)
    (out / "README.md").unlink(missing_ok=True)
    (out / "sources.json").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def write_split(out: Path, split: str, rows: list[tuple[str, int, bytes, dict]]) -> None:
    image_dir = out / SPLIT_DIRS[split]
    image_dir.mkdir(parents=True)
    for name, _, jpeg, _ in rows:
        (image_dir / name).write_bytes(jpeg)
    lines = ["img_name,target"] + [f"{name},{label}" for name, label, _, _ in rows]
    (out / f"{SPLIT_DIRS[split]}_label.txt").write_text("\n".join(lines) + "\n", newline="\n")


def readme_text(sources: list[Source], counts: dict[str, int], seed: int) -> str:
    by_key = {s.key: s for s in sources}
    source_lines = "\n".join(
        f"- {split}: " + "; ".join(f"`{by_key[k].name}` ({by_key[k].licence})" for k in keys)
        for split, keys in SPLIT_SOURCES.items()
    )
    count_lines = "\n".join(
        f"- `{SPLIT_DIRS[split]}/`: {n} images ({n // 2} fake, {n - n // 2} real)"
        + (f"; {n // 4} of the fakes are {UNSEEN_FAMILY} forgeries, a family no other split has" if split == "test" else "")
        for split, n in counts.items()
    )
    return f"""# Sample data (synthetic, FFDI layout, source-disjoint)

Generated by `python scripts/make_sample_data.py` (seed {seed}); rerunning it
reproduces these files byte for byte (same Pillow/libjpeg build). Each
`*_label.txt` is a CSV (`img_name,target`; `1` = fake, `0` = real) in random
order; file names are random hex and reveal neither label nor source.
`sources.json` records each image's split, label, source photograph, splice
donor, forgery families, crop box and JPEG quality.

## Counts

{count_lines}

## Source photographs, one split each

Every photograph belongs to exactly one split, so the validation and test
images are crops of photographs the training split never saw (and splice
donors come from the same split). Bundled with scikit-image and scikit-learn
(no download); licences as stated in the loading functions' documentation:

{source_lines}

Grayscale photographs are converted to RGB.

## How the images are made

Every image is a random crop (never the same crop box twice) of one of its
split's photographs, resized to {SIDE_RANGE[0]}-{SIDE_RANGE[1]} px per side (aspect {ASPECT_RANGE[0]}-{ASPECT_RANGE[1]}) and saved
as JPEG with quality {QUALITY_RANGE[0]}-{QUALITY_RANGE[1]}; both classes share these distributions. A fake
additionally gets one or two local manipulations, each on a region covering
{REGION_AREA_RANGE[0]:.0%}-{REGION_AREA_RANGE[1]:.0%} of the image with a feathered edge, applied before the JPEG save:

- splice (face-swap style): an elliptical patch from another photograph of
  the same split, rendered at 1/3-2/3 resolution and upscaled, colour-matched
  to the host region (per-channel mean/std in LAB);
- upsampling: the region downscaled 2-4x and upscaled back (nearest or
  bilinear);
- re-noising: the region Gaussian-blurred, then fresh Gaussian noise added.

Half of the test split's fakes get a family seen nowhere else instead:

- copy-move: a region of the same photograph, from elsewhere in it, pasted
  at the crop's own scale (no resampling, no noise change).

These are stand-ins for real deepfakes, useful for exercising the pipeline
and for seeing the gap between seen and unseen photographs and forgeries,
not for judging a detector.
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    for split, count in DEFAULT_COUNTS.items():
        parser.add_argument(f"--{split}", type=int, default=count, help=f"{split} images")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    counts = {split: getattr(args, split) for split in DEFAULT_COUNTS}
    sources = load_sources()
    clear_outputs(args.out)
    by_key = {source.key: source for source in sources}
    split_rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(args.seed).spawn(3)]
    used_names: set[str] = set()
    images: dict[str, dict] = {}
    for (split, count), rng in zip(counts.items(), split_rngs):
        rows = make_split(rng, split, [by_key[k] for k in SPLIT_SOURCES[split]], count, used_names)
        write_split(args.out, split, rows)
        images.update({f"{SPLIT_DIRS[split]}/{name}": record for name, _, _, record in rows})
    record = {
        "seed": args.seed,
        "splits": {split: list(keys) for split, keys in SPLIT_SOURCES.items()},
        "sources": {s.key: {"name": s.name, "licence": s.licence} for s in sources},
        "unseen_family": {"split": "test", "family": UNSEEN_FAMILY},
        "images": images,
    }
    (args.out / "sources.json").write_text(json.dumps(record, indent=0, sort_keys=True) + "\n", newline="\n")
    (args.out / "README.md").write_text(readme_text(sources, counts, args.seed), newline="\n")
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {sum(counts.values())} images, {total} bytes, to {args.out}")


if __name__ == "__main__":
    main()
