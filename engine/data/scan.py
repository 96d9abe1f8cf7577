"""A health scan of a dataset: per-split statistics and every problem found, in the engine's words.

Torch-free (standard library, numpy, pandas, Pillow), for the app's dataset screen, which
runs it in a worker thread. Two passes:

1. The splits and their label files: counts of images, real and fake are known at once
   (a 1,000,000-line label file reads in about a second). A split whose label file is
   broken is reported with the engine's own message (``engine.data.dataset.read_label_file``:
   file, lines, fix) and the other splits are still scanned; the broken split's images
   are still listed from a lenient parse where one is possible.
2. The images (``check_images``): each file is opened and only its header is parsed
   (``PIL.Image.open`` without decoding, about 40 µs an image), plus its last 64 bytes for
   JPEG's end-of-image marker. Missing, empty, unreadable, truncated, tiny, huge, misnamed
   and non-RGB images are reported; sizes, formats and modes are counted.

``on_progress`` receives snapshots (copies) of the report, so a UI thread may read them while
the scan goes on; ``should_stop`` is polled between images.
"""

from __future__ import annotations

import csv
import itertools
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from engine.contract.errors import DataError
from engine.data.dataset import FFDI_SPLITS, Dataset, Split, SplitProblem, find_dataset, is_image_name, list_images
from engine.data.images import BadImage, open_rgb  # also sets PIL's limits as the engine has them
from engine.data.metadata import jpeg_quality
from engine.data.shortcut import MetaRows, shortcut_result

TINY_SIDE = 32  # pixels: an image with a shorter side is reported as "tiny"
HUGE_PIXELS = 50_000_000  # more than this many pixels is reported as "huge"
TAIL_BYTES = 64  # how much of a file's end is read to find JPEG's end-of-image marker (or PNG's IEND)
MAX_ISSUES_PER_KIND = 10_000  # per split and kind; more are counted in SplitStats.issue_counts, not listed

# Formats Pillow may report for a file with this extension; anything else is a misnamed file.
EXTENSION_FORMATS: dict[str, frozenset[str]] = {
    ".jpg": frozenset({"JPEG", "MPO"}),
    ".jpeg": frozenset({"JPEG", "MPO"}),
    ".jfif": frozenset({"JPEG", "MPO"}),
    ".png": frozenset({"PNG"}),
    ".bmp": frozenset({"BMP", "DIB"}),
    ".webp": frozenset({"WEBP"}),
    ".tif": frozenset({"TIFF"}),
    ".tiff": frozenset({"TIFF"}),
    ".gif": frozenset({"GIF"}),
    ".ppm": frozenset({"PPM"}),
    ".pgm": frozenset({"PPM"}),
}
FORMAT_EXTENSION = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "BMP": ".bmp", "DIB": ".bmp", "WEBP": ".webp",
                    "TIFF": ".tif", "GIF": ".gif", "PPM": ".ppm"}
PLAIN_MODES = frozenset({"RGB", "L"})
MODE_NOTES = {
    "RGBA": "RGBA image: converted to RGB when loaded (the alpha channel is dropped)",
    "LA": "grayscale image with alpha: converted to RGB when loaded (the alpha channel is dropped)",
    "P": "palette image: converted to RGB when loaded",
    "PA": "palette image with alpha: converted to RGB when loaded",
    "CMYK": "CMYK image: converted to RGB when loaded",
    "YCbCr": "YCbCr image: converted to RGB when loaded",
    "1": "1-bit image: converted to RGB when loaded",
    "I": "32-bit integer image: scaled to 8-bit RGB when loaded",
    "F": "floating-point image: scaled to 8-bit RGB when loaded",
}
KINDS = ("missing", "unreadable", "truncated", "empty", "tiny", "huge", "format", "mode")

ProgressFn = Callable[["ScanReport"], None]
StopFn = Callable[[], bool]


@dataclass
class ImageIssue:
    split: str  # "train" / "val" / "test"
    name: str  # img_name as in the split (relative to its folder)
    line: int | None  # line in the label file (header = line 1); None without a label or list file
    kind: str  # one of KINDS
    message: str  # one sentence: the file, what is wrong and, where useful, the fix


@dataclass
class SplitStats:
    split: str
    images: int
    real: int | None  # None for an unlabelled split
    fake: int | None
    scanned: int = 0  # images the scan has looked at so far
    min_size: tuple[int, int] | None = None  # (width, height) of the smallest area
    max_size: tuple[int, int] | None = None  # (width, height) of the largest area
    formats: dict[str, int] = field(default_factory=dict)  # PIL format -> count
    modes: dict[str, int] = field(default_factory=dict)  # PIL mode -> count
    issue_counts: dict[str, int] = field(default_factory=dict)  # kind -> count, including any not listed
    folder: Path | None = None
    label_file: Path | None = None

    @property
    def issues(self) -> int:
        return sum(self.issue_counts.values())


@dataclass
class ScanReport:
    root: Path
    layout: str  # "ffdi" / "folders" / "" when not a dataset
    splits: dict[str, SplitStats] = field(default_factory=dict)
    issues: list[ImageIssue] = field(default_factory=list)
    label_problems: list[str] = field(default_factory=list)  # the engine's DataError messages, per broken split
    error: str | None = None  # not a dataset at all: the engine's message
    done: bool = False
    cancelled: bool = False
    seconds: float = 0.0  # time spent so far
    shortcut: dict | None = None  # engine.data.shortcut.shortcut_result, once every image was looked at

    @property
    def images(self) -> int:
        return sum(s.images for s in self.splits.values())

    @property
    def scanned(self) -> int:
        return sum(s.scanned for s in self.splits.values())

    @property
    def ok(self) -> bool:
        """Nothing to report (informational "mode" notes aside)."""
        return self.error is None and not self.label_problems and all(i.kind == "mode" for i in self.issues)

    def snapshot(self) -> ScanReport:
        """A copy that later progress of the scan does not change."""
        splits = {
            k: replace(s, formats=dict(s.formats), modes=dict(s.modes), issue_counts=dict(s.issue_counts))
            for k, s in self.splits.items()
        }
        return replace(self, splits=splits, issues=list(self.issues), label_problems=list(self.label_problems))


# ---------------------------------------------------------------- splits


@dataclass
class _Listed:
    """A split's image names as the scan will visit them."""

    split: str
    folder: Path
    names: list[str]
    targets: np.ndarray | None  # int64; -1 where a lenient parse found no valid target
    label_file: Path | None
    lines: list[int | None] | None = None  # line of each name; computed on the first issue
    scan: bool = True  # False when the split's folder does not exist


def _listed(split: Split) -> _Listed:
    return _Listed(split.name, split.folder, split.names, split.targets, split.label_file)


_ABSOLUTE = re.compile(r"^(/|\\|[A-Za-z]:[\\/])")
_CLIMBS = re.compile(r"(?:^|[\\/])\.\.(?:[\\/]|$)")


def _lenient_rows(path: Path) -> tuple[list[str], list[int], list[int] | None]:
    """Names, their lines and targets (-1 = invalid; None without a target column) of any CSV-ish file.

    Skips what the engine rejects outright (empty names, absolute paths, '..', repeats); never raises
    for the file's content.
    """
    names: list[str] = []
    lines: list[int] = []
    targets: list[int] = []
    seen: set[str] = set()
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        columns = [c.strip().lower() for c in header]
        name_col, target_col = 0, (1 if len(columns) > 1 else None)
        rows: list[tuple[int, list[str]]] = []
        if "img_name" in columns:
            name_col = columns.index("img_name")
            target_col = columns.index("target") if "target" in columns else None
        elif columns and is_image_name(columns[0]):  # no header line: line 1 is an image
            rows.append((1, header))
        for number, row in itertools.chain(rows, ((reader.line_num, r) for r in reader)):
            if len(row) <= name_col:
                continue
            name = row[name_col].strip()
            if not name or name in seen or _ABSOLUTE.match(name) or _CLIMBS.search(name):
                continue
            seen.add(name)
            names.append(name)
            lines.append(number)
            if target_col is not None:
                value = row[target_col].strip() if len(row) > target_col else ""
                targets.append(int(value) if value in ("0", "1") else -1)
    return names, lines, (targets if target_col is not None else None)


def _lenient(split: str, folder: Path, label_file: Path | None) -> _Listed:
    """What can still be listed of a split whose label file (or folder) the engine rejects."""
    if label_file is not None and label_file.is_file():
        try:
            names, lines, targets = _lenient_rows(label_file)
        except OSError:
            names, lines, targets = [], [], None
        if names:
            arr = np.asarray(targets, dtype=np.int64) if targets is not None else None
            return _Listed(split, folder, names, arr, label_file, list(lines))
    try:  # no usable label file: the folder's images, unlabelled, are still worth checking
        names = list_images(folder, recursive=True) if folder.is_dir() else []
    except OSError:
        names = []
    return _Listed(split, folder, names, None, None)


def _message(exc: Exception) -> str:
    """A DataError's own words; an OSError (e.g. no permission) in the same style."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: cannot read it ({exc.strerror}). Fix: check its permissions."
    return str(exc)


def _find_splits(root: Path, report: ScanReport, found: tuple[Dataset, list[SplitProblem]] | None) -> list[_Listed]:
    """Every split that can be listed; a broken one is reported in the engine's words and listed leniently."""
    if found is not None:
        dataset, problems = found
    else:
        problems = []
        try:
            dataset = find_dataset(root, check_files=False, problems=problems)
        except (DataError, OSError) as exc:
            report.error = _message(exc)
            return []
    report.layout = dataset.layout
    report.label_problems += [p.message for p in problems]
    listed = [_listed(split) for split in dataset.splits.values()]
    listed += [_lenient(p.split, p.folder, p.label_file) for p in problems]
    order = list(FFDI_SPLITS)
    return sorted(listed, key=lambda item: order.index(item.split) if item.split in order else len(order))


def _stats(listed: _Listed) -> SplitStats:
    real = fake = None
    if listed.targets is not None:
        real = int((listed.targets == 0).sum())
        fake = int((listed.targets == 1).sum())
    return SplitStats(listed.split, len(listed.names), real, fake, folder=listed.folder, label_file=listed.label_file)


def _line_numbers(listed: _Listed) -> list[int | None]:
    """The label-file line of each name (header = line 1), or None per name without a label file."""
    if listed.lines is not None:
        return listed.lines
    if listed.label_file is None:
        listed.lines = [None] * len(listed.names)
        return listed.lines
    try:
        raw = listed.label_file.read_bytes()
    except OSError:
        listed.lines = [None] * len(listed.names)
        return listed.lines
    n_lines = raw.count(b"\n") + (1 if raw and not raw.endswith(b"\n") else 0)
    if n_lines - 1 == len(listed.names) and b"\r" not in raw.replace(b"\r\n", b"") and b'"' not in raw:
        listed.lines = list(range(2, len(listed.names) + 2))  # no blank lines: line = row + 2
    else:  # blank or quoted lines: match names to lines
        names, lines, _ = _lenient_rows(listed.label_file)
        where = dict(zip(names, lines))
        listed.lines = [where.get(n) for n in listed.names]
    return listed.lines


# ---------------------------------------------------------------- images


def _quality(img: Image.Image) -> int | None:
    """Estimated JPEG quality; None ("unknown") when the quantisation tables cannot be read."""
    try:
        return jpeg_quality(getattr(img, "quantization", None))
    except Exception:
        return None


def _engine_reason(path: str, exc: BaseException) -> str:
    """The reason engine.data.images.open_rgb gives for this file (only called for a file that failed)."""
    try:
        open_rgb(path)
    except BadImage as bad:
        return str(bad).replace(f" {path!r}", "")  # PIL names the file, which the message already does
    except Exception as other:  # the engine itself would fail on it with this
        return f"{type(other).__name__}: {other}"
    return str(exc) or type(exc).__name__


class _SplitIssues:
    """One split's issues: counted per kind, the first ``max_issues`` of each kept, each fix naming the label line."""

    def __init__(self, listed: _Listed, stats: SplitStats, report: ScanReport, max_issues: int) -> None:
        self.listed, self.counts, self.issues, self.max_issues = listed, stats.issue_counts, report.issues, max_issues
        self.label_name = listed.label_file.name if listed.label_file is not None else None

    def add(self, index: int, kind: str, message: str) -> None:
        n = self.counts.get(kind, 0) + 1
        self.counts[kind] = n
        if n <= self.max_issues:
            listed = self.listed
            self.issues.append(ImageIssue(listed.split, listed.names[index], _line_numbers(listed)[index], kind, message))

    def its_line(self, index: int) -> str:
        line = _line_numbers(self.listed)[index]
        return f"line {line} of {self.label_name}" if line is not None else f"its line in {self.label_name}"

    def not_found_fix(self, index: int) -> str:
        if self.label_name is None:
            return "it was listed but is gone; rescan the folder"
        return f"copy the image into {self.listed.folder} or delete {self.its_line(index)}"

    def delete(self, index: int) -> str:
        return "delete it" if self.label_name is None else f"delete it and {self.its_line(index)}"


def _read_header(path: str, index: int, issues: _SplitIssues) -> tuple | None:
    """Format, JPEG quality, width, height, file size, mode and EXIF presence from the file's header (and its tail:
    truncated?), in MetaRows.add's order; None when unreadable."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except FileNotFoundError:
        issues.add(index, "missing", f"{path}: file not found; {issues.not_found_fix(index)}")
        return None
    except OSError as exc:
        issues.add(index, "unreadable", f"{path}: cannot open the file ({exc.strerror or exc}); check its permissions")
        return None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            issues.add(index, "empty", f"{path}: empty file (0 bytes); copy the image again or {issues.delete(index)}")
            return None
        try:
            img = Image.open(fh)
            width, height = img.size
            fmt, mode = img.format, img.mode
        except Exception as exc:
            issues.add(index, "unreadable", f"{path}: unreadable image ({_engine_reason(path, exc)}); "
                                            f"replace it or {issues.delete(index)}")
            return None
        if fmt in ("JPEG", "MPO", "PNG"):
            fh.seek(max(size - TAIL_BYTES, 0))
            tail = fh.read(TAIL_BYTES)
            if fmt == "PNG" and b"IEND" not in tail:
                issues.add(index, "truncated", f"{path}: truncated PNG (no IEND chunk at the end); "
                                               f"re-export it or {issues.delete(index)}")
            elif fmt != "PNG" and b"\xff\xd9" not in tail:
                issues.add(index, "truncated", f"{path}: truncated JPEG (no end-of-image marker); "
                                               f"re-export it or {issues.delete(index)}")
    quality = _quality(img) if fmt in ("JPEG", "MPO") else None
    return fmt, quality, width, height, size, mode, "exif" in img.info


def _check_image(index: int, name: str, path: str, header: tuple, stats: SplitStats,
                 issues: _SplitIssues) -> None:
    """Count the image's format, mode and size; note what is odd about them."""
    fmt, _, width, height, _, mode, _ = header
    stats.formats[fmt] = stats.formats.get(fmt, 0) + 1
    stats.modes[mode] = stats.modes.get(mode, 0) + 1
    area = width * height
    if stats.min_size is None or area < stats.min_size[0] * stats.min_size[1]:
        stats.min_size = (width, height)
    if stats.max_size is None or area > stats.max_size[0] * stats.max_size[1]:
        stats.max_size = (width, height)
    if width < TINY_SIDE or height < TINY_SIDE:
        issues.add(index, "tiny", f"{path}: tiny image ({width}x{height}, under {TINY_SIDE} px a side); "
                                  f"it is upscaled for training, so check it is a real sample or {issues.delete(index)}")
    elif area > HUGE_PIXELS:
        issues.add(index, "huge", f"{path}: huge image ({width}x{height}, {area / 1e6:.0f} megapixels); "
                                  "the engine still trains on it but decodes it slowly, so consider downscaling it")
    ext = os.path.splitext(name)[1]
    expected = EXTENSION_FORMATS.get(ext.lower())
    if expected is not None and fmt not in expected:
        proper = FORMAT_EXTENSION.get(fmt, f".{str(fmt).lower()}")
        issues.add(index, "format", f"{path}: a {fmt} file named {ext}; the engine reads it by its content, "
                                    f"but rename it to {proper} for other tools")
    if mode not in PLAIN_MODES:
        note = MODE_NOTES.get(mode) or (
            f"{mode} image: scaled to 8-bit RGB when loaded" if mode.startswith("I;16")
            else f"{mode} image: converted to RGB when loaded")
        issues.add(index, "mode", f"{path}: {note}")


def _scan_split(
    listed: _Listed,
    stats: SplitStats,
    report: ScanReport,
    max_issues: int,
    tick: Callable[[], bool],
    meta: MetaRows | None = None,
) -> bool:
    """Look at every image of one split, collecting labelled images' metadata into ``meta``; False when stopped."""
    base = str(listed.folder) + os.sep
    issues = _SplitIssues(listed, stats, report, max_issues)
    for i, name in enumerate(listed.names):
        stats.scanned = i  # images finished in this split
        if tick():
            return False
        path = base + name
        header = _read_header(path, i, issues)
        if header is not None:
            _check_image(i, name, path, header, stats, issues)
            if meta is not None and 0 <= listed.targets[i] <= 1:
                meta.add(int(listed.targets[i]), *header)
    stats.scanned = len(listed.names)
    return True


def scan_dataset(
    root: Path | str,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    check_images: bool = True,
    *,
    progress_every: float = 0.2,
    max_issues_per_kind: int = MAX_ISSUES_PER_KIND,
    found: tuple[Dataset, list[SplitProblem]] | None = None,
) -> ScanReport:
    """Scan the dataset at ``root``; never raises for a broken or missing dataset (see ScanReport.error).

    ``on_progress(snapshot)`` is called once the splits are read (before any image is opened),
    then at most every ``progress_every`` seconds during the image pass, and at the end.
    ``should_stop()`` is polled before each image; when it returns True the scan ends with
    ``cancelled=True, done=False``. ``found``: what ``find_dataset(root, check_files=False,
    problems=...)`` returned, when the caller has read the label files already (they are not read twice).
    """
    started = time.monotonic()
    report = ScanReport(Path(root), "")

    def progress() -> None:
        report.seconds = time.monotonic() - started
        if on_progress is not None:
            on_progress(report.snapshot())

    listed = _find_splits(report.root, report, found)
    for item in listed:
        report.splits[item.split] = _stats(item)
        if item.label_file is not None and not item.folder.is_dir():
            item.scan = False
            report.label_problems.append(
                f"{item.folder}: the image folder of this split does not exist. Fix: put the images there."
            )
    progress()

    if check_images and report.error is None:
        next_progress = time.monotonic() + progress_every

        def tick() -> bool:
            nonlocal next_progress
            if should_stop is not None and should_stop():
                return True
            if on_progress is not None and time.monotonic() >= next_progress:
                progress()
                next_progress = time.monotonic() + progress_every
            return False

        meta = {item.split: MetaRows() for item in listed if item.targets is not None}
        for item in listed:
            if item.scan and not _scan_split(item, report.splits[item.split], report, max_issues_per_kind, tick,
                                             meta.get(item.split)):
                report.cancelled = True
                break
        if not report.cancelled:
            report.shortcut = shortcut_result(meta)
    report.done = not report.cancelled
    progress()
    return report
