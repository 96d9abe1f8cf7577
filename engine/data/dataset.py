"""Finding a dataset's splits and reading their label files, with every problem found up front.

Torch-free (pandas and the standard library), so the app's dataset screen reports
problems in the same words as the engine. A broken label file stops a run before
it starts, with each offending line listed and the fix named.

Layouts (docs/layouts.md), detected in this order:
- FFDI: ``DATA/trainset/`` + ``DATA/trainset_label.txt`` (CSV ``img_name,target``), likewise
  ``valset``; ``testset`` with an optional label or list file.
- Image folders: ``DATA/{train,val}/`` with class folders ``{real,fake}`` or ForenSynths'
  ``<generator>/[<category>/]{0_real,1_fake}`` inside; ``DATA/test/`` flat or with class folders.
- CSV: ``DATA/{train,val,test}.csv`` (``filename,label`` and any further columns, kept as text).
- GenImage, DeepfakeBench JSON lists, and a bare ForenSynths tree (one split, test): ``engine.data.layouts``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.contract.errors import DataError, Problem, format_problems
from engine.data.layouts import (
    LAYOUT_HELP,
    class_folder_split,
    genimage_split,
    genimage_splits,
    has_class_folders,
    is_deepfakebench,
    read_deepfakebench,
)
from engine.data.split import SOURCE, Dataset, Split, is_image_name, list_images

__all__ = [
    "Dataset",
    "Split",
    "find_dataset",
    "is_image_name",
    "list_images",
    "load_split_folder",
    "read_label_file",
    "resolve_split",
    "training_splits",
]
NAME_COLUMNS = ("img_name", "filename", "file_name", "file", "path", "image")  # the first one a header has names the images
TARGET_COLUMNS = ("target", "label")
SOURCE_COLUMNS = (SOURCE, "generator", "typ", "model", "method", "dataset")  # the first one present names the source
CSV_SPLITS = {"train": ("train.csv",), "val": ("val.csv", "valid.csv", "validation.csv"), "test": ("test.csv",)}

FFDI_SPLITS = {"train": "trainset", "val": "valset", "test": "testset"}
FOLDER_SPLITS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
LABEL_FILE_SUFFIXES = ("_label.txt", "_labels.txt", "_label.csv", "_labels.csv", "_list.txt", "_nolabel.txt")


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


def _standard_columns(columns) -> list[str]:
    """Column names stripped; the first name column (filename, path, ...) becomes img_name, a label column target."""
    cols = [str(c).strip() for c in columns]
    lower = [c.lower() for c in cols]
    for wanted, aliases in (("img_name", NAME_COLUMNS), ("target", TARGET_COLUMNS)):
        if wanted in cols:
            continue
        hit = next((lower.index(a) for a in aliases if a in lower), None)
        if hit is not None and cols[hit] not in ("img_name", "target"):
            cols[hit] = wanted
    return cols


def _check_header(path: Path, frame: pd.DataFrame, need_target: bool) -> pd.DataFrame:
    frame.columns = _standard_columns(frame.columns)
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
    return Split(split or folder.name, folder, names.tolist(), targets, path, "ffdi" if targets is not None else "list",
                 _extra_columns(frame, b"/" in raw))


def _extra_columns(frame: pd.DataFrame, may_nest: bool = True) -> dict[str, list[str]]:
    """Every column beside img_name and target, as text; ``source`` from a source-like column, or from the first
    folder of the names when every name lies in a sub-folder."""
    extra = {str(c): frame[c].astype(str).tolist() for c in frame.columns if c not in ("img_name", "target")}
    if SOURCE not in extra:
        column = next((c for c in extra if c.lower() in SOURCE_COLUMNS), None)
        names = frame["img_name"]
        if column is not None:
            extra[SOURCE] = extra[column]
        elif may_nest and len(names) and names.str.contains("/", regex=False).all():
            extra[SOURCE] = names.str.split("/", n=1).str[0].tolist()
    return extra


# ---------------------------------------------------------------- layouts


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
    if has_class_folders(folder):
        return class_folder_split(name, folder)
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


class _Reader:
    """Reads splits into a dict; a broken one raises, or with a ``problems`` list is recorded there and left out."""

    def __init__(self, problems: list[SplitProblem] | None) -> None:
        self.problems = problems
        self.splits: dict[str, Split] = {}

    def __call__(self, split: str, folder: Path, label: Path | None, reader, *args) -> None:
        try:
            self.splits[split] = reader(*args)
        except (DataError, OSError) as exc:
            if self.problems is None:
                raise
            message = str(exc) if isinstance(exc, DataError) else f"{exc.filename}: cannot read it ({exc.strerror})"
            self.problems.append(SplitProblem(split, folder, label, message))


def _root_layouts(root: Path) -> dict[str, list[str]]:
    """The split-level layouts ``root`` shows, each with the entries that show it."""
    entries = set(os.listdir(root))
    seen = {
        "ffdi": sorted(e for f in FFDI_SPLITS.values() for e in (f, f"{f}_label.txt") if e in entries),
        "folders": sorted(n for names in FOLDER_SPLITS.values() for n in names if (root / n).is_dir()),
        "csv": sorted(n for names in CSV_SPLITS.values() for n in names if (root / n).is_file()),
    }
    return {layout: found for layout, found in seen.items() if found}


def find_dataset(root: Path | str, check_files: bool = True, problems: list[SplitProblem] | None = None) -> Dataset:
    """Recognise the layout of ``root`` and read every split it has.

    A broken split raises its DataError, or, when ``problems`` is a list, is recorded there and left
    out, so that a health check can still look at the others.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found. Fix: pass --data with the folder that holds trainset/.")
    read = _Reader(problems)
    layouts = _root_layouts(root)
    if len(layouts) > 1:
        shown = "; ".join(f"{layout}: {', '.join(found)}" for layout, found in layouts.items())
        raise DataError(f"{root}: a mix of layouts ({shown}). Fix: keep one layout in a dataset folder "
                        f"(move the others out):\n  {LAYOUT_HELP}")
    layout = next(iter(layouts), None)
    if layout == "ffdi":
        _read_ffdi(root, read, check_files)
    elif layout == "folders":
        _read_folders(root, read, check_files)
    elif layout == "csv":
        for split, names in CSV_SPLITS.items():
            file = next((root / n for n in names if (root / n).is_file()), None)
            if file is not None:
                read(split, root, file, read_label_file, file, root, split != "test", check_files, split)
    else:
        layout = _read_benchmark(root, read, check_files)
    if not read.splits and not read.problems:
        found = sorted(os.listdir(root))[:8]
        raise DataError(f"{root}: not a dataset in any layout this tool reads; found: "
                        f"{', '.join(found) or 'an empty folder'}. Fix: arrange it in one of these:\n  {LAYOUT_HELP}")
    kinds = {s.layout for s in read.splits.values()} - {"list", "ffdi", "folders"}
    return Dataset(root, layout if layout != "folders" or not kinds else kinds.pop(), read.splits)


def _read_ffdi(root: Path, read: _Reader, check_files: bool) -> None:
    for split, folder_name in FFDI_SPLITS.items():
        folder, label = root / folder_name, ffdi_label_file(root, split)
        if split != "test":
            if label.is_file() or folder.is_dir():
                read(split, folder, label, read_label_file, label, folder, True, check_files, split)
        elif folder.is_dir():
            read(split, folder, _label_file_for(folder), load_split_folder, folder, split, check_files)


def _labelled_by_folders(split: str, folder: Path) -> Split:
    if not has_class_folders(folder):
        raise DataError(f"{folder}: expected class folders real/ and fake/ (or <generator>/0_real/ and "
                        "<generator>/1_fake/) inside. Fix: sort the images into them.")
    return class_folder_split(split, folder)


def _read_folders(root: Path, read: _Reader, check_files: bool) -> None:
    for split, names in FOLDER_SPLITS.items():
        folder = next((root / n for n in names if (root / n).is_dir()), None)
        if folder is None:
            continue
        if split == "test":
            read(split, folder, _label_file_for(folder), load_split_folder, folder, split, check_files)
        else:
            read(split, folder, None, _labelled_by_folders, split, folder)


def _read_benchmark(root: Path, read: _Reader, check_files: bool) -> str:
    """GenImage, DeepfakeBench JSON lists, or a bare ForenSynths tree (one split: test); "" when none fits."""
    genimage = genimage_splits(root)
    if genimage:
        for split, parts in genimage.items():
            read(split, root, None, genimage_split, root, split, parts)
        return "genimage"
    lists = sorted(p for p in root.glob("*.json") if is_deepfakebench(p))
    if lists:
        try:
            read.splits.update(read_deepfakebench(lists, check_files))
        except DataError as exc:
            if read.problems is None:
                raise
            read.problems.append(SplitProblem("test", root, lists[0], str(exc)))
        return "deepfakebench"
    if has_class_folders(root):
        read("test", root, None, class_folder_split, "test", root)
        return "forensynths"
    return ""


def training_splits(root: Path | str) -> tuple[Split, Split]:
    """Train and val splits of a dataset, every label-file problem raised before anything starts."""
    if not str(root):
        raise DataError("no dataset given. Fix: pass --data DIR (a folder with trainset/ and valset/), or set [data] root.")
    dataset = find_dataset(root)
    missing = [s for s in ("train", "val") if s not in dataset.splits]
    if missing:
        raise DataError(
            f"{dataset.root}: no {' or '.join(missing)} split (it has: {', '.join(dataset.splits) or 'none'}). "
            "Fix: training needs trainset/ + trainset_label.txt and valset/ + valset_label.txt (or train/ and val/ "
            "with real/ and fake/ inside; or another layout of docs/layouts.md with a train and a val split)."
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
        if path.suffix.lower() == ".csv":  # a filename,label list; names relative to its folder
            return read_label_file(path, path.parent, need_target=False, check_files=check_files,
                                   split=split or path.stem)
        if path.suffix.lower() == ".json" and is_deepfakebench(path):
            splits = read_deepfakebench([path], check_files)
            return Dataset(path, "deepfakebench", splits).split(split or next(
                (s for s in (default_split, "test", "val") if s in splits), next(iter(splits))))
        raise DataError(f"{path}: cannot tell which image folder this file describes. Fix: pass the split folder, a "
                        "filename,label CSV, or a DeepfakeBench JSON list.")
    if looks_like_dataset_root(path):
        dataset = find_dataset(path, check_files=check_files)
        if split is None and default_split not in dataset.splits and len(dataset.splits) == 1:
            return next(iter(dataset.splits.values()))  # a benchmark of one split (a ForenSynths test tree)
        return dataset.split(split or default_split)
    return load_split_folder(path, check_files=check_files, labels=Path(labels) if labels else None)


def looks_like_dataset_root(path: Path | str) -> bool:
    """A folder of splits (trainset/, valset/ ... or train/, val/ ...) rather than a folder of images."""
    path = Path(path)
    if any((path / name).is_dir() for names in (FFDI_SPLITS.values(), *FOLDER_SPLITS.values()) for name in names):
        return True
    if any((path / name).is_file() for names in CSV_SPLITS.values() for name in names):
        return True
    return bool(genimage_splits(path)) or any(is_deepfakebench(p) for p in path.glob("*.json"))
