"""The layouts benchmarks ship in, read into Splits that name each image's ``source``.

- Class folders at any depth up to two below a split folder (``engine.data.dataset`` calls these):
  ``{real,fake}``; ForenSynths / CNNDetection ``<generator>/[<category>/]{0_real,1_fake}``;
  GenImage's ``{nature,ai}``. The folders above the class folder are the source (and category).
- GenImage: ``ROOT/<Generator>/[<subset>/]{train,val}/{ai,nature}``: splits train and val, source = generator.
- DeepfakeBench: JSON lists ``{dataset: {label: {split: {[compression:] {video: {"label", "frames"}}}}}}``;
  a label containing "real" is real; source = the dataset, ``method`` = the label.

Torch-free, like the rest of ``engine.data``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from engine.contract.errors import DataError, Problem, format_problems
from engine.data.split import SOURCE, Split, list_images

CLASS_FOLDERS = {"real": 0, "fake": 1, "0_real": 0, "1_fake": 1, "nature": 0, "ai": 1}
CLASS_DEPTH = 2  # how many folders (generator, category) may lie between a split folder and its class folders
GENIMAGE_SPLITS = {"train": "train", "val": "val"}
LAYOUT_HELP = (
    "FFDI: trainset/ + trainset_label.txt, valset/ + valset_label.txt, [testset/]\n"
    "  image folders: train/real/ and train/fake/, likewise val/, [test/]\n"
    "  ForenSynths / CNNDetection: [train/ val/ test/] <generator>/[<category>/]{0_real,1_fake}/\n"
    "  GenImage: <Generator>/[<subset>/]{train,val}/{ai,nature}/\n"
    "  CSV: train.csv, val.csv, test.csv (filename,label[,source,...]) or --data FILE.csv\n"
    "  DeepfakeBench: one or more JSON lists (dataset -> label -> split -> video -> frames)"
)


def _class_dirs(folder: Path) -> dict[str, str]:
    """Class folder names (lower case) -> the names on disk, directly in ``folder``."""
    try:
        with os.scandir(folder) as it:
            return {e.name.lower(): e.name for e in it if e.name.lower() in CLASS_FOLDERS and e.is_dir()}
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return {}


def class_holders(folder: Path, depth: int = CLASS_DEPTH) -> list[tuple[tuple[str, ...], Path]]:
    """Every folder at most ``depth`` levels below ``folder`` that holds class folders, with the path to it."""
    if _class_dirs(folder):
        return [((), folder)]
    if depth == 0:
        return []
    try:
        subs = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    return [((sub, *parts), holder) for sub in subs for parts, holder in class_holders(folder / sub, depth - 1)]


def has_class_folders(folder: Path) -> bool:
    return bool(class_holders(folder))


def class_layout(classes) -> str:
    lower = {c.lower() for c in classes}
    if lower & {"0_real", "1_fake"}:
        return "forensynths"
    if lower & {"ai", "nature"}:
        return "genimage"
    return "folders"


def class_folder_split(name: str, folder: Path) -> Split:
    """A split sorted into class folders, directly or below generator (and category) folders."""
    names: list[str] = []
    targets: list[int] = []
    sources: list[str] = []
    categories: list[str] = []
    seen: set[str] = set()
    for parts, holder in class_holders(folder):
        classes = _class_dirs(holder)
        seen.update(classes)
        for cls, target in CLASS_FOLDERS.items():
            if cls not in classes:
                continue
            prefix = "/".join((*parts, classes[cls]))
            found = [f"{prefix}/{f}" for f in list_images(holder / classes[cls], recursive=True)]
            names += found
            targets += [target] * len(found)
            sources += [parts[0] if parts else ""] * len(found)
            categories += ["/".join(parts[1:])] * len(found)
    if not names:
        raise DataError(
            f"{folder}: no images in its class folders. Fix: put real images in real/ (or 0_real/) and fakes in "
            "fake/ (or 1_fake/), directly in the split folder or below a generator folder."
        )
    extra = {}
    if any(sources):
        extra[SOURCE] = sources
    if any(categories):
        extra["category"] = categories
    return Split(name, folder, names, np.asarray(targets, dtype=np.int64), None, class_layout(seen), extra)


# ---------------------------------------------------------------- GenImage


def genimage_splits(root: Path) -> dict[str, list[tuple[str, Path]]]:
    """GenImage's split folders, per split: (generator, its train/ or val/ folder)."""
    found: dict[str, list[tuple[str, Path]]] = {}
    try:
        generators = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return {}
    for generator in generators:
        candidates = [root / generator]
        try:
            candidates += sorted(e.path for e in os.scandir(root / generator) if e.is_dir())
        except OSError:
            continue
        for base in map(Path, candidates):
            for split, folder_name in GENIMAGE_SPLITS.items():
                folder = base / folder_name
                if _class_dirs(folder).keys() & {"ai", "nature"}:
                    found.setdefault(split, []).append((generator, folder))
    return found


def genimage_split(root: Path, split: str, parts: list[tuple[str, Path]]) -> Split:
    names: list[str] = []
    targets: list[int] = []
    sources: list[str] = []
    for generator, folder in parts:
        prefix = folder.relative_to(root).as_posix()
        inner = class_folder_split(split, folder)
        names += [f"{prefix}/{n}" for n in inner.names]
        targets += inner.targets.tolist()
        sources += [generator] * len(inner)
    return Split(split, root, names, np.asarray(targets, dtype=np.int64), None, "genimage", {SOURCE: sources})


# ---------------------------------------------------------------- DeepfakeBench


def _videos(node, path: tuple[str, ...]):
    """(keys on the way, entry) of every video entry ({"label", "frames"}) below node."""
    if isinstance(node, dict):
        if isinstance(node.get("frames"), list):
            yield path, node
            return
        for key, value in node.items():
            yield from _videos(value, (*path, str(key)))


def is_deepfakebench(path: Path) -> bool:
    """A JSON file whose text begins like DeepfakeBench's lists (cheap: the first 64 KiB)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(65536)
    except OSError:
        return False
    return head.lstrip().startswith("{") and '"frames"' in head


def read_deepfakebench(files: list[Path], check_files: bool = True) -> dict[str, Split]:
    """Every split of the JSON lists, frames relative to each file's folder (or absolute)."""
    rows: dict[str, list[tuple[str, int, str, str]]] = {}
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{file}: not a readable JSON list ({exc}). Fix: pass DeepfakeBench's dataset JSON.") from None
        for keys, entry in _videos(data, ()):
            if len(keys) < 3:
                raise DataError(f"{file}: a video entry at {'/'.join(keys) or 'the top'} lacks the dataset, label and "
                                "split keys above it. Fix: use DeepfakeBench's layout dataset -> label -> split -> video.")
            dataset, label, split = keys[0], keys[1], keys[2]
            target = 0 if "real" in label.lower() else 1
            for frame in entry["frames"]:
                full = os.path.normpath(frame if os.path.isabs(str(frame)) else file.parent / str(frame))
                rows.setdefault(split, []).append((full, target, dataset, label))
    if not rows:
        raise DataError(f"{files[0]}: no video entries with frames. Fix: pass DeepfakeBench's dataset JSON.")
    return {split: _json_split(split, items, files[0], check_files) for split, items in rows.items()}


def _json_split(split: str, items: list[tuple[str, int, str, str]], file: Path, check_files: bool) -> Split:
    paths = [p for p, *_ in items]
    folder = Path(os.path.commonpath([os.path.dirname(p) for p in paths]))
    names = [Path(p).relative_to(folder).as_posix() for p in paths]
    if check_files:
        missing = [Problem(None, f"{p!r} does not exist") for p in paths if not os.path.isfile(p)]
        if missing:
            raise DataError(format_problems(file, f"frames of the {split} split not found", missing,
                                            "put the frames where the JSON says, relative to the JSON's folder"))
    return Split(split, folder, names, np.asarray([t for _, t, _, _ in items], dtype=np.int64), file, "deepfakebench",
                 {SOURCE: [d for _, _, d, _ in items], "method": [m for *_, m in items]})
