"""Explaining a checkpoint's calls image by image: maps at the image's own size, overlays, explain.csv.

An image goes through the same evaluation transform as when it is scored (resize, centre crop,
or a grid of native crops); its map comes back through the same geometry, so a pixel of the map
is a pixel of the image. Huge images are explained at a bounded size (``MAX_SIDE``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from engine.cam import ExplainError, TargetLayer, class_activation_maps
from engine.contract.runstore import atomic_path
from engine.data.dataset import Split
from engine.data.images import BadImage, open_rgb
from engine.inference import reduce_crops
from engine.loader import DeviceNormalizer, GridCrops, ImageSpec, eval_transform

MAX_SIDE = 2048  # the longest side an image is explained at; its map and overlay have this size too
FILTERS = ("misclassified", "fake", "real", "all")
OVERLAY_ALPHA = 0.5
CSV_COLUMNS = ["img_name", "target", "score", "map", "overlay"]


@dataclass
class Explanation:
    name: str
    target: int  # the image's label, -1 when the split has none
    score: float  # probability of fake
    heat: np.ndarray  # H x W float32 in [0, 1], the size of ``image``
    image: Image.Image


def load_bounded(path: Path | str) -> Image.Image:
    """The image, its longest side at most MAX_SIDE (JPEGs reduced while decoding)."""
    image = open_rgb(path, MAX_SIDE)
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
    return image


def _resized(grid: np.ndarray, width: int, height: int) -> np.ndarray:
    if grid.shape == (height, width):
        return grid.astype(np.float32)
    return np.asarray(Image.fromarray(grid.astype(np.float32), mode="F").resize((width, height), Image.Resampling.BILINEAR))


def place_maps(maps: np.ndarray, width: int, height: int, spec: ImageSpec) -> np.ndarray:
    """The maps of the model's inputs (K x S x S) laid back on the image: H x W, scaled to [0, 1]."""
    s = spec.img_size
    if spec.crop == "native":
        crops = GridCrops(s, spec.eval_grid)
        h, w = max(height, s), max(width, s)
        canvas = np.zeros((h, w), np.float32)
        starts = [(y, x) for y in crops.starts(h) for x in crops.starts(w)]
        for (y, x), grid in zip(starts, maps, strict=True):
            np.maximum(canvas[y:y + s, x:x + s], grid, out=canvas[y:y + s, x:x + s])
        top, left = (h - height) // 2, (w - width) // 2
        heat = canvas[top:top + height, left:left + width]
    elif spec.eval_crop >= 1.0:
        heat = _resized(maps[0], width, height)
    else:
        short = int(math.floor(s / spec.eval_crop))
        rw, rh = (short, int(short * height / width)) if width <= height else (int(short * width / height), short)
        canvas = np.zeros((rh, rw), np.float32)
        top, left = int(round((rh - s) / 2.0)), int(round((rw - s) / 2.0))
        canvas[top:top + s, left:left + s] = maps[0]
        heat = _resized(canvas, width, height)
    top_value = float(heat.max()) if heat.size else 0.0
    return (heat / top_value if top_value > 0 else np.zeros_like(heat)).clip(0.0, 1.0).astype(np.float32)


def explain_image(model: torch.nn.Module, spec: ImageSpec, target_layer: TargetLayer, image: Image.Image,
                  device: torch.device, method: str, toward: str = "fake") -> tuple[np.ndarray, float]:
    """(map at the image's size in [0, 1], probability of fake) of one decoded image."""
    transform, _ = eval_transform(spec)
    pixels = transform(image)
    pixels = pixels[None] if pixels.dim() == 3 else pixels  # K x S x S x 3
    x = DeviceNormalizer(spec, device, channels_last=False)(pixels)
    maps, probs = class_activation_maps(model, x, target_layer, method, toward)
    score = float(reduce_crops(probs.float().cpu(), len(pixels), spec.eval_reduce)[0])
    return place_maps(maps.cpu().numpy(), image.width, image.height, spec), score


def colour(heat: np.ndarray) -> np.ndarray:
    """A jet-like colour ramp (blue, cyan, yellow, red): H x W x 3 uint8."""
    ramp = [np.clip(1.5 - np.abs(4.0 * heat - c), 0.0, 1.0) for c in (3.0, 2.0, 1.0)]
    return (np.stack(ramp, -1) * 255.0 + 0.5).astype(np.uint8)


def overlay(image: Image.Image, heat: np.ndarray) -> Image.Image:
    return Image.blend(image.convert("RGB"), Image.fromarray(colour(heat)), OVERLAY_ALPHA)


def select_images(split: Split, names: list[str] | None, filter_name: str, limit: int,
                  scores: Callable[[], tuple[np.ndarray, np.ndarray]]) -> list[int]:
    """Positions in the split: the named images, or the filter's first ``limit`` (misclassified: most wrong first;
    ``scores`` gives (positions, probabilities of fake) and is asked only for that filter)."""
    where = {n: i for i, n in enumerate(split.names)}
    if names:
        missing = [n for n in names if n not in where]
        if missing:
            raise ExplainError(f"{split.folder}: no image named {', '.join(missing[:5])} in this split. "
                               "Fix: pass names as in its label file (--images a.jpg,b.jpg).")
        return [where[n] for n in names]
    if filter_name not in FILTERS:
        raise ExplainError(f"--filter {filter_name!r}: not one of {', '.join(FILTERS)}")
    if filter_name == "all":
        return list(range(min(limit, len(split))))
    if split.targets is None:
        raise ExplainError(f"{split.folder}: --filter {filter_name} needs labels, and this split has none. "
                           "Fix: use --filter all or --images.")
    targets = np.asarray(split.targets)
    if filter_name != "misclassified":
        return [int(i) for i in np.flatnonzero(targets == (1 if filter_name == "fake" else 0))[:limit]]
    index, prob = scores()
    wrongness = np.abs(prob - targets[index])
    wrong = wrongness > 0.5
    order = np.argsort(-wrongness[wrong], kind="stable")
    return [int(i) for i in index[wrong][order][:limit]]


def explain_split(model: torch.nn.Module, spec: ImageSpec, target_layer: TargetLayer, split: Split,
                  positions: list[int], device: torch.device, method: str,
                  toward: str = "fake") -> Iterator[Explanation | tuple[str, str]]:
    """An Explanation per image, or (name, reason) for one that cannot be decoded."""
    model.eval()
    for i in positions:
        name = split.names[i]
        try:
            image = load_bounded(split.folder / name)
        except BadImage as exc:
            yield name, str(exc)
            continue
        heat, score = explain_image(model, spec, target_layer, image, device, method, toward)
        target = int(split.targets[i]) if split.targets is not None else -1
        yield Explanation(name, target, score, heat, image)


def file_stem(name: str) -> str:
    """An image's name as one file name (image-folder names hold a class folder)."""
    return name.replace("/", "__").replace("\\", "__")


def write_explanation(out_dir: Path, item: Explanation) -> dict:
    """The map (.npy) and overlay (.png) of one image; its explain.csv row."""
    stem = file_stem(item.name)
    heat_file, overlay_file = Path("maps") / f"{stem}.npy", Path("overlays") / f"{stem}.png"
    with atomic_path(out_dir / heat_file) as tmp, open(tmp, "wb") as fh:
        np.save(fh, item.heat)
    with atomic_path(out_dir / overlay_file) as tmp:
        overlay(item.image, item.heat).save(tmp, format="PNG")
    return {"img_name": item.name, "target": item.target, "score": round(item.score, 6),
            "map": heat_file.as_posix(), "overlay": overlay_file.as_posix()}


def write_csv(out_dir: Path, rows: list[dict]) -> Path:
    path = out_dir / "explain.csv"
    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=CSV_COLUMNS).to_csv(tmp, index=False)
    return path


def default_out_dir(weights: Path, split: Split, method: str, toward: str = "fake") -> Path:
    """``explanations/<checkpoint>-on-<split>-<method>/`` of the checkpoint's run, else under the current folder
    (``-<toward>`` added for maps of another class than fake)."""
    weights = weights.resolve()
    name = f"{weights.stem}-on-{split.folder.name}-{method}" + (f"-{toward}" if toward != "fake" else "")
    if weights.parent.name == "checkpoints":
        return weights.parent.parent / "explanations" / name
    return Path("explanations") / name
