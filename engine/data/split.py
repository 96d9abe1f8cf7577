"""A split (its images, targets and per-image text columns such as ``source``) and a dataset of splits.

Kept apart from the readers (``engine.data.dataset``, ``engine.data.layouts``) so that every
layout builds the same thing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.contract.errors import DataError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".jfif"}
)
SOURCE = "source"  # the column that names each image's generator or sub-folder, where a layout tells


@dataclass
class Split:
    """One split's images, in the order of its label or list file, and their targets (1 = fake).

    ``extra`` holds per-image text columns, one value per name: ``source`` (the generator or
    sub-folder, where the layout tells) and any further column of a label file, kept as text."""

    name: str
    folder: Path
    names: list[str]
    targets: np.ndarray | None  # int64, or None for an unlabelled split
    label_file: Path | None = None
    layout: str = "ffdi"  # "ffdi", "folders", "list", "forensynths", "genimage", "csv" or "deepfakebench"
    extra: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def labelled(self) -> bool:
        return self.targets is not None

    @property
    def sources(self) -> list[str] | None:
        return self.extra.get(SOURCE)

    def class_counts(self) -> dict[str, int]:
        if self.targets is None:
            return {}
        fake = int(self.targets.sum())
        return {"real": len(self.names) - fake, "fake": fake}


@dataclass
class Dataset:
    root: Path
    layout: str
    splits: dict[str, Split]

    def split(self, name: str) -> Split:
        if name not in self.splits:
            have = ", ".join(self.splits) or "none"
            raise DataError(f"{self.root}: the dataset has no {name!r} split (it has: {have})")
        return self.splits[name]


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def list_images(folder: Path, recursive: bool = False) -> list[str]:
    """Image file names under folder, relative to it, sorted."""
    if not recursive:
        with os.scandir(folder) as it:
            return sorted(e.name for e in it if is_image_name(e.name) and e.is_file())
    found = []
    for dirpath, _, files in os.walk(folder):
        rel = os.path.relpath(dirpath, folder)
        found.extend(f if rel == "." else f"{rel}/{f}" for f in files if is_image_name(f))
    return sorted(found)
