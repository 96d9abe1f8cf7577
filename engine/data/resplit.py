"""A leakage-free train/validation split: near-duplicates (and clusters) never span two splits.

Torch-free. The training and validation images of a dataset are pooled, hashed (engine.data.hashes)
and linked when their hashes are near (``hash-group``: within the near-copy threshold; ``cluster``: within
a looser one, so that also different crops of one photograph and other look-alikes are linked);
each connected group goes wholly into the new training or the new validation split, drawn at random
(seeded) until the validation split holds about ``val`` of the images.

Only label files are written, never image copies: the output folder gets ``trainset/`` and ``valset/``
folders holding one link per original split folder (``train`` and ``val``), and label files whose
names go through those links (``train/abc.jpg``); a test split is linked as it is.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.contract.errors import DataError
from engine.contract.text import printable
from engine.data.dataset import Dataset, find_dataset
from engine.data.hashes import hash_split
from engine.data.leakage import DEFAULT_THRESHOLD
from engine.data.neighbours import groups, near_pairs

CLUSTER_THRESHOLD = 14  # bits of 64: the looser link of --by cluster
METHODS = ("hash-group", "cluster")

ProgressFn = Callable[[str, int, int], None]


@dataclass
class NewSplit:
    out: Path
    train: int
    val: int
    train_counts: dict[str, int]
    val_counts: dict[str, int]
    groups: int  # groups of linked images (a lone image is a group of one)
    largest_group: int
    unhashable: list[tuple[str, str, str]]  # (split, name, reason): each kept as a group of its own

    def summary(self) -> str:
        return (f"{self.out}: train {self.train} images ({self.train_counts['real']} real, {self.train_counts['fake']} fake), "
                f"val {self.val} ({self.val_counts['real']} real, {self.val_counts['fake']} fake); "
                f"{self.groups} groups, the largest has {self.largest_group} images")


def _pool(dataset: Dataset) -> tuple[list[str], list[str], np.ndarray, list]:
    """(source split, name, target) of every labelled training and validation image."""
    sources, names, targets, splits = [], [], [], []
    for key in ("train", "val"):
        split = dataset.splits.get(key)
        if split is None:
            continue
        if split.targets is None:
            raise DataError(f"{split.folder}: the {key} split has no labels. Fix: give it a label file.")
        sources += [key] * len(split)
        names += split.names
        targets.append(split.targets)
        splits.append(split)
    if not splits:
        raise DataError(f"{dataset.root}: no train or val split to split anew. Fix: pass a dataset with trainset/.")
    return sources, names, np.concatenate(targets).astype(np.int64), splits


def assign(group: np.ndarray, val: float, seed: int) -> np.ndarray:
    """True for the items whose group goes to validation: whole groups, drawn in a seeded order, until ``val`` is met."""
    n = len(group)
    ids, sizes = np.unique(group, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(ids))
    want = round(val * n)
    chosen = np.zeros(len(ids), dtype=bool)
    taken = 0
    for k in order:
        if taken >= want:
            break
        if taken + sizes[k] <= want + max(1, sizes[k] // 2):  # a group that overshoots by more than half stays in train
            chosen[k] = True
            taken += sizes[k]
    member = np.zeros(int(group.max()) + 1 if n else 0, dtype=bool)
    member[ids[chosen]] = True
    return member[group]


def _counts(targets: np.ndarray) -> dict[str, int]:
    fake = int(targets.sum())
    return {"real": len(targets) - fake, "fake": fake}


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() or link.exists():
        if link.is_symlink() and Path(os.readlink(link)) == target:
            return
        raise DataError(f"{link}: already exists. Fix: pass another --out, or delete it.")
    link.symlink_to(target, target_is_directory=True)


def refuse_existing_out(out: Path) -> None:
    """--out must be new (or an empty folder): a split never writes into another dataset or anything else."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise DataError(f"--out {out}: exists and is not a folder; nothing was written. Fix: pass a new folder.")
    if out.is_dir() and any(out.iterdir()):
        raise DataError(f"--out {out}: this folder exists and is not empty (another dataset, or other files); a split "
                        "writes only into a new folder, so nothing was written. Fix: pass a new folder to --out.")


def refuse_unwritable_names(dataset: Dataset) -> None:
    """Names with control characters (a newline, ESC) cannot go into a label file that ffdv reads back."""
    bad = [(split.name, name) for split in dataset.splits.values() for name in split.names
           if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name)]
    if bad:
        shown = ", ".join(printable(f"{s}/{n}", 120) for s, n in bad[:5])
        raise DataError(f"{dataset.root}: {len(bad)} image names hold control characters (a newline, tab or ESC), "
                        f"which no label file can hold: {shown}; nothing was written. Fix: rename those files.")


def _write_labels(path: Path, names: list[str], targets: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["img_name", "target"])
        writer.writerows(zip(names, targets.tolist()))
    os.replace(tmp, path)


def make_split(
    root: Path | str,
    out: Path | str,
    by: str = "hash-group",
    val: float = 0.2,
    seed: int = 0,
    threshold: int | None = None,
    workers: int = 0,
    on_progress: ProgressFn | None = None,
) -> NewSplit:
    """Write a new split of ``root``'s training and validation images into ``out``; DataError when it cannot."""
    if by not in METHODS:
        raise DataError(f"--by {by!r}: not a way to split. Fix: use one of {', '.join(METHODS)}.")
    if not 0.0 < val < 1.0:
        raise DataError(f"--val {val}: must be a fraction between 0 and 1. Fix: pass --val 0.2, for example.")
    root, out = Path(root), Path(out)
    if out.resolve() == root.resolve():
        raise DataError(f"{out}: that is the dataset itself. Fix: pass another --out folder.")
    refuse_existing_out(out)
    threshold = threshold if threshold is not None else (DEFAULT_THRESHOLD if by == "hash-group" else CLUSTER_THRESHOLD)
    dataset = find_dataset(root)
    sources, names, targets, splits = _pool(dataset)
    refuse_unwritable_names(dataset)
    hashes, ok, unhashable = [], [], []
    for split in splits:
        what = f"hashing {split.name}"
        result = hash_split(split.folder, split.names, workers, on_progress=(
            (lambda d, t, what=what: on_progress(what, d, t)) if on_progress else None))
        hashes.append(result.hashes)
        ok.append(result.ok)
        unhashable += [(split.name, split.names[row], reason) for row, reason in sorted(result.errors.items())]
    all_hashes, all_ok = np.concatenate(hashes), np.concatenate(ok)
    if on_progress is not None:
        on_progress("grouping", 0, 1)
    left, right, _ = near_pairs(all_hashes, all_ok, all_hashes, all_ok, threshold, same=True)
    group = groups(len(names), left, right)
    in_val = assign(group, val, seed)
    train_counts, val_counts = _counts(targets[~in_val]), _counts(targets[in_val])
    empty = [f"{split} has no {cls} images" for split, counts in (("train", train_counts), ("val", val_counts))
             for cls, count in counts.items() if count == 0]
    if empty:
        smaller = "use --by hash-group (smaller groups) or " if by == "cluster" else ""
        raise DataError(
            f"{root}: the new split would leave a class empty ({'; '.join(empty)}): train {train_counts['real']} real, "
            f"{train_counts['fake']} fake; val {val_counts['real']} real, {val_counts['fake']} fake, from "
            f"{len(np.unique(group))} groups of linked images. Fix: change --val or --seed, or {smaller}"
            "pass a lower --threshold."
        )
    out.mkdir(parents=True, exist_ok=True)
    for folder_name in ("trainset", "valset"):
        (out / folder_name).mkdir(exist_ok=True)
        for split in splits:
            _link(split.folder.resolve(), out / folder_name / split.name)
    if "test" in dataset.splits:
        test = dataset.splits["test"]
        _link(test.folder.resolve(), out / "testset")
        if test.targets is not None:
            _write_labels(out / "testset_label.txt", test.names, test.targets)
    prefixed = [f"{s}/{n}" for s, n in zip(sources, names)]
    for folder_name, mask in (("trainset", ~in_val), ("valset", in_val)):
        rows = np.flatnonzero(mask)
        _write_labels(out / f"{folder_name}_label.txt", [prefixed[i] for i in rows], targets[rows])
    sizes = np.bincount(group)
    return NewSplit(out, int((~in_val).sum()), int(in_val.sum()), train_counts, val_counts,
                    int((sizes > 0).sum()), int(sizes.max()) if len(sizes) else 0, unhashable)
