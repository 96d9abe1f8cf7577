"""Finding a dataset's splits and reading their label files, with every problem found up front.

Torch-free (pandas and the standard library), so the app's dataset screen reports
problems in the same words as the engine. A broken label file stops a run before
it starts, with each offending line listed and the fix named.

Two layouts (ARCHITECTURE.md, the data path):
- FFDI: ``DATA/trainset/`` + ``DATA/trainset_label.txt`` (CSV ``img_name,target``), likewise
  ``valset``; ``testset`` with an optional label or list file.
- Image folders: ``DATA/{train,val}/{real,fake}/*``, ``DATA/test/`` flat or with class folders.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.contract.errors import DataError, Problem, format_problems

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".jfif"}
)
FFDI_SPLITS = {"train": "trainset", "val": "valset", "test": "testset"}
FOLDER_SPLITS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
CLASS_FOLDERS = {"real": 0, "fake": 1}
LABEL_FILE_SUFFIXES = ("_label.txt", "_labels.txt", "_label.csv", "_labels.csv", "_list.txt", "_nolabel.txt")


@dataclass
class Split:
    """One split's images, in the order of its label or list file, and their targets (1 = fake)."""

    name: str
    folder: Path
    names: list[str]
    targets: np.ndarray | None  # int64, or None for an unlabelled split
    label_file: Path | None = None
    layout: str = "ffdi"  # "ffdi", "folders" or "list"

    def __len__(self) -> int:
        return len(self.names)

    @property
    def labelled(self) -> bool:
        return self.targets is not None

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


# ---------------------------------------------------------------- label files


def _undecodable_lines(path: Path) -> list[Problem]:
    problems = []
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(Problem(number, f"byte {exc.start + 1} of the line is not UTF-8: {raw[:60]!r}"))
    return problems


def _field_count_problems(path: Path) -> list[Problem]:
    problems = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = csv.reader(fh)
        header = next(rows, [])
        for number, row in enumerate(rows, 2):
            if row and len(row) != len(header):
                problems.append(Problem(number, f"{len(row)} fields, the header has {len(header)}: {','.join(row)!r}"))
    return problems


def _read_csv(path: Path, need_target: bool) -> pd.DataFrame:
    """Read every row as strings; rows with the wrong number of fields are all reported with their lines."""
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, skip_blank_lines=False, encoding="utf-8-sig", engine="c"
        )
    except UnicodeDecodeError:
        raise DataError(format_problems(path, "lines that are not UTF-8 text", _undecodable_lines(path),
                                        "save the label file as UTF-8 (CSV, header img_name,target)")) from None
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{path}: the label file is empty. Fix: write the header line img_name,target and one line per image."
        ) from None
    except pd.errors.ParserError:
        frame = None  # a line with too many fields: list every one of them below
    if frame is not None and isinstance(frame.index, pd.RangeIndex):
        return frame
    # pandas either gave up, or took an extra first-line field as an index column: find every bad line.
    with open(path, newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), [])
    _check_header(path, pd.DataFrame(columns=header), need_target)  # a wrong header explains it best
    raise DataError(format_problems(path, "lines with the wrong number of fields", _field_count_problems(path),
                                    "one image per line as img_name,target; put a name that contains a comma in "
                                    "double quotes"))


def _check_header(path: Path, frame: pd.DataFrame, need_target: bool) -> pd.DataFrame:
    frame.columns = [str(c).strip() for c in frame.columns]
    cols = list(frame.columns)
    if "img_name" in cols and ("target" in cols or not need_target):
        return frame
    header = ",".join(cols)
    expected = "img_name,target" if need_target else "img_name (and target, if the split is labelled)"
    if cols and is_image_name(cols[0]):
        raise DataError(
            f"{path}: line 1: the file has no header line (it starts with {header!r}). "
            f"Fix: add the line '{'img_name,target' if need_target else 'img_name'}' at the top."
        )
    raise DataError(f"{path}: line 1: malformed header {header!r}; expected {expected}. Fix: make line 1 read {expected}.")


# A byte search of the whole file first (C speed); only a file that may hold such a name pays for the
# per-name checks (pandas' string methods cost about 0.4 µs a name without pyarrow).


def _may_contain(raw: bytes, *needles: bytes) -> bool:
    return any(needle in raw for needle in needles)


_CONTROL_BYTES = tuple(bytes([c]) for c in (*range(0x20), 0x7F))
_CONTROL_PATTERN = r"[\x00-\x1f\x7f\x80-\x9f]"


def _name_problems(names: pd.Series, folder: Path, raw: bytes) -> tuple[list[tuple[str, list[Problem], str]], pd.Series]:
    """Names that are empty, absolute, climb out with '..', hold control characters, or repeat; and the mask of
    names that cannot be looked up as files (so they are not reported as missing too)."""
    lines = names.index.to_numpy() + 2  # header is line 1; blank lines keep their rows
    out = []
    empty = names == ""
    control = (names.str.contains(_CONTROL_PATTERN, regex=True)
               if _may_contain(raw.replace(b"\r\n", b"").replace(b"\n", b""), *_CONTROL_BYTES, b"\xc2")
               else pd.Series(False, index=names.index))
    if _may_contain(raw, b"/", b"\\", b"..", b":"):
        absolute = names.str.match(r"^(/|\\|[A-Za-z]:[\\/])")
        climbs = names.str.contains(r"(?:^|[\\/])\.\.(?:[\\/]|$)", regex=True)
    else:
        absolute = climbs = pd.Series(False, index=names.index)
    if empty.any():
        out.append(("empty image names", [Problem(int(n), "img_name is empty") for n in lines[empty.to_numpy()]],
                    "give every line a file name, or delete the line"))
    if absolute.any():
        out.append((
            "absolute paths in img_name",
            [Problem(int(n), f"{v!r} is an absolute path") for n, v in zip(lines[absolute.to_numpy()], names[absolute])],
            f"give the file name inside {folder} (e.g. 'abc.jpg'), not a path",
        ))
    if climbs.any():
        out.append((
            "names that leave the split folder",
            [Problem(int(n), f"{v!r} contains '..'") for n, v in zip(lines[climbs.to_numpy()], names[climbs])],
            f"img_name must be a file inside {folder}; move the image there",
        ))
    if control.any():
        out.append((
            "control characters in img_name",
            [Problem(int(n), f"{v!r} holds control characters (shown escaped)")
             for n, v in zip(lines[control.to_numpy()], names[control])],
            "rename those files without tabs, newlines or escape sequences, and their lines to match",
        ))
    dup = names.duplicated(keep="first") & ~empty
    if dup.any():
        first_line = {}
        for n, v in zip(lines, names):
            first_line.setdefault(v, int(n))
        out.append((
            "duplicate image names",
            [Problem(int(n), f"{v!r} repeats line {first_line[v]}") for n, v in zip(lines[dup.to_numpy()], names[dup])],
            "list each image once (delete the repeated lines)",
        ))
    return out, empty | absolute | climbs | control


def _target_problems(targets: pd.Series) -> tuple[np.ndarray, list[tuple[str, list[Problem], str]]]:
    numeric = pd.to_numeric(targets, errors="coerce")
    bad = ~numeric.isin([0, 1])
    values = np.where(bad.to_numpy(), 0, numeric.fillna(0).to_numpy()).astype(np.int64)
    if not bad.any():
        return values, []
    lines = targets.index.to_numpy()[bad.to_numpy()] + 2
    problems = [Problem(int(n), f"target {v!r} is not 0 or 1") for n, v in zip(lines, targets[bad])]
    return values, [("targets other than 0 or 1", problems, "use 1 for fake and 0 for real")]


def _missing_images(names: pd.Series, folder: Path, raw: bytes) -> list[Problem]:
    try:
        with os.scandir(folder) as it:
            present = {e.name for e in it}
    except FileNotFoundError:
        raise DataError(f"{folder}: the image folder of this split does not exist. Fix: put the images there.") from None
    nested = names.str.contains("/", regex=False) if b"/" in raw else pd.Series(False, index=names.index)
    missing = ~names.isin(present) & ~nested
    if nested.any():
        missing |= nested & ~names.map(lambda n: (folder / n).is_file())
    lines = names.index.to_numpy()[missing.to_numpy()] + 2
    return [Problem(int(n), f"{v!r} is not in {folder}") for n, v in zip(lines, names[missing])]


def read_label_file(
    path: Path, folder: Path, need_target: bool = True, check_files: bool = True, split: str = ""
) -> Split:
    """Parse and check a label (or list) file; raise one DataError listing every problem found."""
    path, folder = Path(path), Path(folder)
    if not path.is_file():
        raise DataError(f"{path}: label file not found. Fix: write it (CSV with header img_name,target).")
    raw = path.read_bytes()
    frame = _check_header(path, _read_csv(path, need_target), need_target)
    if _may_contain(raw, b" ", b"\t"):  # spaces around fields are stripped (rare: the slow way)
        frame = frame.apply(lambda column: column.str.strip())
    frame = frame[~(frame == "").all(axis=1)]  # blank lines, also whitespace-only ones
    names = frame["img_name"]
    groups, unusable = _name_problems(names, folder, raw)
    targets = None
    if "target" in frame.columns:
        targets, target_groups = _target_problems(frame["target"])
        groups += target_groups
    if check_files and len(names):  # every kind in one pass: missing images are listed beside the rest
        missing = _missing_images(names[~unusable], folder, raw)
        if missing:
            groups.append((f"images listed but not found in {folder}", missing,
                           "copy the missing images into the split folder, or delete their lines"))
    if not len(names):
        groups.append(("no images listed", [Problem(None, "the file has a header but no image lines")],
                       "list one image per line as img_name,target"))
    if groups:
        blocks = [format_problems(path, what, problems, fix) for what, problems, fix in groups]
        raise DataError("\n".join(blocks))
    return Split(split or folder.name, folder, names.tolist(), targets, path, "ffdi" if targets is not None else "list")


# ---------------------------------------------------------------- layouts


def _class_folder_split(name: str, folder: Path) -> Split:
    names: list[str] = []
    targets: list[int] = []
    classes = {c.lower(): c for c in os.listdir(folder) if (folder / c).is_dir()}
    for cls, target in CLASS_FOLDERS.items():
        if cls not in classes:
            continue
        found = [f"{classes[cls]}/{f}" for f in list_images(folder / classes[cls], recursive=True)]
        names += found
        targets += [target] * len(found)
    if not names:
        raise DataError(
            f"{folder}: no images in {folder}/real or {folder}/fake. Fix: put real images in real/ and fakes in fake/."
        )
    return Split(name, folder, names, np.asarray(targets, dtype=np.int64), None, "folders")


def _has_class_folders(folder: Path) -> bool:
    try:
        return any(e.is_dir() and e.name.lower() in CLASS_FOLDERS for e in os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return False


def _label_file_for(folder: Path) -> Path | None:
    for suffix in LABEL_FILE_SUFFIXES:
        candidate = folder.parent / f"{folder.name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def load_split_folder(folder: Path, name: str = "", check_files: bool = True, labels: Path | None = None) -> Split:
    """One split folder: class folders, a label/list file beside it, or just the images (sorted)."""
    folder = Path(folder)
    name = name or folder.name
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder. Fix: pass the folder that holds the split's images.")
    label_file = Path(labels) if labels else _label_file_for(folder)
    if label_file is not None:
        return read_label_file(label_file, folder, need_target=False, check_files=check_files, split=name)
    if _has_class_folders(folder):
        return _class_folder_split(name, folder)
    names = list_images(folder)
    if not names:
        raise DataError(
            f"{folder}: no images here and no label file beside it ({folder.name}_label.txt). "
            "Fix: pass a split folder that holds images."
        )
    return Split(name, folder, names, None, None, "list")


@dataclass(frozen=True)
class SplitProblem:
    """A split that could not be read, where it is, and the engine's message about it."""

    split: str
    folder: Path
    label_file: Path | None
    message: str


def ffdi_label_file(root: Path | str, split: str) -> Path:
    """An FFDI split's label file: ``trainset_label.txt`` beside ``trainset/``."""
    return Path(root) / f"{FFDI_SPLITS[split]}_label.txt"


def split_folder(root: Path | str, split: str) -> Path | None:
    """A split's image folder under a dataset root (FFDI's name first, then the image-folder layout's), or None."""
    root = Path(root)
    return next((root / n for n in (FFDI_SPLITS[split], *FOLDER_SPLITS[split]) if (root / n).is_dir()), None)


def find_dataset(root: Path | str, check_files: bool = True, problems: list[SplitProblem] | None = None) -> Dataset:
    """Recognise the layout of ``root`` and read every split it has.

    A broken split raises its DataError, or, when ``problems`` is a list, is recorded there and left
    out, so that a health check can still look at the others.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found. Fix: pass --data with the folder that holds trainset/.")
    splits: dict[str, Split] = {}

    def read(split: str, folder: Path, label: Path | None, reader, *args) -> None:
        try:
            splits[split] = reader(*args)
        except (DataError, OSError) as exc:
            if problems is None:
                raise
            message = str(exc) if isinstance(exc, DataError) else f"{exc.filename}: cannot read it ({exc.strerror})"
            problems.append(SplitProblem(split, folder, label, message))

    if any((root / f).is_dir() or (root / f"{f}_label.txt").is_file() for f in FFDI_SPLITS.values()):
        for split, folder_name in FFDI_SPLITS.items():
            folder, label = root / folder_name, ffdi_label_file(root, split)
            if split != "test":
                if label.is_file() or folder.is_dir():
                    read(split, folder, label, read_label_file, label, folder, True, check_files, split)
            elif folder.is_dir():
                read(split, folder, _label_file_for(folder), load_split_folder, folder, split, check_files)
        return Dataset(root, "ffdi", splits)
    def labelled_by_folders(split: str, folder: Path) -> Split:
        if not _has_class_folders(folder):
            raise DataError(f"{folder}: expected class folders real/ and fake/ inside. Fix: sort the images into them.")
        return _class_folder_split(split, folder)

    for split in FOLDER_SPLITS:
        folder = split_folder(root, split)  # FFDI's names are not here: that layout was handled above
        if folder is None:
            continue
        if split == "test":
            read(split, folder, _label_file_for(folder), load_split_folder, folder, split, check_files)
        else:
            read(split, folder, None, labelled_by_folders, split, folder)
    if not splits and not problems:
        found = sorted(os.listdir(root))[:8]
        raise DataError(
            f"{root}: not a dataset. Expected trainset/ with trainset_label.txt (FFDI layout) "
            f"or train/real/ and train/fake/ (image folders); found: {', '.join(found) or 'an empty folder'}."
        )
    return Dataset(root, "folders", splits)


def training_splits(root: Path | str) -> tuple[Split, Split]:
    """Train and val splits of a dataset, every label-file problem raised before anything starts."""
    if not str(root):
        raise DataError("no dataset given. Fix: pass --data DIR (a folder with trainset/ and valset/), or set [data] root.")
    dataset = find_dataset(root)
    missing = [s for s in ("train", "val") if s not in dataset.splits]
    if missing:
        raise DataError(
            f"{dataset.root}: no {' or '.join(missing)} split. Fix: training needs trainset/ + trainset_label.txt "
            "and valset/ + valset_label.txt (or train/ and val/ with real/ and fake/ inside)."
        )
    return dataset.splits["train"], dataset.splits["val"]


def resolve_split(path: Path | str, split: str | None = None, labels: Path | str | None = None,
                  check_files: bool = True, default_split: str = "val") -> Split:
    """What ``--data`` names for evaluate/predict: a dataset root (its ``split``, else ``default_split``), a split
    folder, or a label file."""
    path = Path(path)
    if path.is_file():
        stem = path.name
        for suffix in LABEL_FILE_SUFFIXES:
            if stem.endswith(suffix):
                folder = path.parent / stem[: -len(suffix)]
                return read_label_file(path, folder, need_target=False, check_files=check_files, split=folder.name)
        raise DataError(f"{path}: cannot tell which image folder this file describes. Fix: pass the split folder.")
    if looks_like_dataset_root(path):
        return find_dataset(path, check_files=check_files).split(split or default_split)
    return load_split_folder(path, check_files=check_files, labels=Path(labels) if labels else None)


def looks_like_dataset_root(path: Path | str) -> bool:
    """A folder of splits (trainset/, valset/ ... or train/, val/ ...) rather than a folder of images."""
    path = Path(path)
    return any((path / name).is_dir() for names in (FFDI_SPLITS.values(), *FOLDER_SPLITS.values()) for name in names)
