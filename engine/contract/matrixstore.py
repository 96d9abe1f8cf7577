"""Reading a finished evaluation matrix (its folder) without torch, and the commands that make or use one.

The app lists a run's past matrices (``evaluations/*/matrix.json``), shows matrix.csv,
turns one row's per-image scores (scores.parquet) into a predictions file with the clean
score beside it (for the "flips from right to wrong" filter). The ``ffdv`` command lines
that start a matrix or write a row's submission are engine.contract.jobs'.

Every file is checked before the app shows a number from it (``open_matrix``, ``row_predictions``):
a matrix edited or damaged by hand raises MatrixStoreError naming the file, the line and the fix,
and one that is only incomplete (a truncated table, repeated score rows) comes with warnings, so
the app lists and opens it without ever showing a wrong number as if it were right.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.contract.errors import FfdvError
from engine.contract.protocol import METRIC_LABELS
from engine.contract.runstore import atomic_path
from engine.contract.text import printable

MATRIX_JSON = "matrix.json"
MATRIX_CSV = "matrix.csv"
BY_SOURCE_CSV = "by_source.csv"  # a row per model, dataset, perturbation and source, where layouts name sources
SCORES = "scores.parquet"
CLEAN = "none"
LATEST_TIME = 32_503_680_000.0  # 3000-01-01: a later "time" is damage, and the clock cannot show it
FIX = "Fix: run the matrix again (ffdv evaluate … --out FOLDER) or delete this folder"
NAMES = ("model", "kind", "dataset", "perturbation")  # text columns of matrix.csv
COUNTS = ("images", "scored", "unreadable")
WHOLE = (*COUNTS, "count")  # whole numbers (by_source.csv's images of a source: count)
REQUIRED = ("model", "dataset", "perturbation", "images", "auc", "drop_auc")  # what the app shows
UNBOUNDED = ("loss",)  # every other metric lies in [0, 1] (its drop in [-1, 1])


class MatrixStoreError(FfdvError):
    """A matrix folder that cannot be read; the message names the file, what is wrong and the fix."""


@dataclass
class MatrixSummary:
    """matrix.json, checked field by field; a damaged one keeps only its folder, its file's time and ``problem``."""

    folder: Path
    name: str
    time: float
    checkpoints: list[dict[str, Any]]
    datasets: list[str]
    perturbations: list[str]
    rows: list[str]
    greedy: list[str] = field(default_factory=list)
    folders: dict[str, str] = field(default_factory=dict)  # dataset key -> its image folder
    sizes: dict[str, int] = field(default_factory=dict)  # dataset key -> its image count, where recorded
    problem: str | None = None
    warnings: list[str] = field(default_factory=list)  # what is missing or was left out, for a partial table

    @property
    def title(self) -> str:
        if self.problem:  # the file's name without the folder, so that a cut list line still shows what is wrong
            return f"{self.folder.name}: damaged: {self.problem.replace(f'{self.folder}/', '')}"
        members = [c["key"] for c in self.checkpoints if c.get("kind") == "checkpoint"]
        return f"{', '.join(members)} on {', '.join(self.datasets)} ({len(self.perturbations)} perturbations)"

    def member(self, key: str) -> dict[str, Any] | None:
        return next((c for c in self.checkpoints if c.get("key") == key), None)


@dataclass
class MatrixTable:
    """A checked matrix: its summary, matrix.csv's rows (numbers finite, names known) and what was left out."""

    summary: MatrixSummary
    frame: pd.DataFrame
    warnings: list[str]


def _fail(path: Path, what: str) -> MatrixStoreError:
    return MatrixStoreError(f"{path}: {what}. {FIX}")


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _texts(value: Any, path: Path, where: str, *, empty: bool = False) -> list[str]:
    """A list of distinct non-empty strings (``empty``: the list may be empty)."""
    if not isinstance(value, list) or not all(_text(v) for v in value) or (not value and not empty):
        raise _fail(path, f"{where} is not a list of names ({printable(value, 80)})")
    if len(set(value)) != len(value):
        raise _fail(path, f"{where} names something twice")
    return list(value)


def _entries(value: Any, path: Path, where: str, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """A non-empty list of objects, each with these text fields and a distinct ``key``."""
    if not isinstance(value, list) or not value:
        raise _fail(path, f"{where} is not a non-empty list ({printable(value, 80)})")
    for i, entry in enumerate(value):
        if not isinstance(entry, dict) or not all(_text(entry.get(f)) for f in fields):
            raise _fail(path, f"{where}[{i}] is not an object with {', '.join(fields)} ({printable(entry, 80)})")
    if len({e["key"] for e in value}) != len(value):
        raise _fail(path, f"{where} has two entries with the same key")
    return value


def _time(value: Any, path: Path) -> float:
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is None or not 0 <= number <= LATEST_TIME:  # NaN compares false; a huge int compares as it is
        raise _fail(path, f'"time" is not a time since 1970 in seconds ({printable(value, 40)})')
    return float(number)


def _summary_of(data: Any, folder: Path, path: Path) -> MatrixSummary:
    if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
        raise _fail(path, 'no "settings" object')
    settings = data["settings"]
    checkpoints = _entries(settings.get("checkpoints"), path, "settings.checkpoints", ("key", "kind", "path"))
    datasets = _entries(settings.get("datasets"), path, "settings.datasets", ("key", "folder"))
    sizes = {d["key"]: d["images"] for d in datasets
             if isinstance(d.get("images"), int) and not isinstance(d["images"], bool) and d["images"] >= 0}
    greedy = data.get("greedy_soup")
    if greedy is not None and not isinstance(greedy, dict):
        raise _fail(path, f'"greedy_soup" is not an object ({printable(greedy, 80)})')
    name = data.get("name", folder.name)
    return MatrixSummary(
        folder=folder, name=name if _text(name) else folder.name, time=_time(data.get("time"), path),
        checkpoints=checkpoints, datasets=[d["key"] for d in datasets],
        perturbations=_texts(settings.get("perturbations"), path, "settings.perturbations"),
        rows=_texts(data.get("rows"), path, '"rows"'),
        greedy=_texts((greedy or {}).get("ingredients", []), path, "greedy_soup.ingredients", empty=True),
        folders={d["key"]: d["folder"] for d in datasets}, sizes=sizes)


def read_summary(folder: Path | str) -> MatrixSummary:
    """matrix.json, every field the app uses checked (types, names, a finite time); MatrixStoreError if not."""
    folder = Path(folder)
    path = folder / MATRIX_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or UTF-8, and numbers too long to parse
        raise _fail(path, f"not a finished matrix ({type(exc).__name__}: {printable(exc, 200)})") from None
    except RecursionError:
        raise _fail(path, "nested too deeply to be a finished matrix") from None
    return _summary_of(data, folder, path)


def _damaged(folder: Path, problem: str) -> MatrixSummary:
    try:
        when = (folder / MATRIX_JSON).stat().st_mtime
    except OSError:
        when = 0.0
    return MatrixSummary(folder, folder.name, when, [], [], [], [], problem=problem)


def list_matrices(run_dirs: list[Path]) -> list[MatrixSummary]:
    """Every matrix in these runs' evaluations/ folders, newest first; a damaged one is listed with its problem."""
    found = []
    for run in dict.fromkeys(Path(r) for r in run_dirs):
        folder = run / "evaluations"
        try:
            candidates = sorted(c for c in folder.iterdir() if (c / MATRIX_JSON).is_file())
        except OSError:
            continue
        for candidate in candidates:
            try:
                found.append(open_matrix(candidate).summary)
            except MatrixStoreError as exc:
                found.append(_damaged(candidate, str(exc)))
    return sorted(found, key=lambda s: -s.time)


def open_matrix(folder: Path | str) -> MatrixTable:
    """matrix.json and matrix.csv, both checked, or MatrixStoreError naming the file, the line and the fix."""
    summary = read_summary(folder)
    frame, warnings = load_matrix(summary)
    summary.warnings = warnings
    return MatrixTable(summary, frame, warnings)


def _csv_text(path: Path) -> tuple[str, list[str]]:
    """matrix.csv's text; a last line without its newline (a file cut short) is left out, with a warning."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot read it ({printable(exc, 200)})") from None
    if text and not text.endswith("\n") and "\n" in text:
        return text[:text.rindex("\n") + 1], [f"{MATRIX_CSV}: its last line is cut short (the file was truncated); "
                                                "that line is left out"]
    return text, []


def _range(column: str) -> tuple[float, float]:
    metric = column.removeprefix("drop_")
    if column.startswith("drop_"):
        return (-math.inf, math.inf) if metric in UNBOUNDED else (-1.0, 1.0)
    return (0.0, math.inf) if column in WHOLE or column in UNBOUNDED else (0.0, 1.0)


def _number(text: str, column: str, line: int, path: Path) -> float:
    """A finite number in the column's range; empty is an undefined metric (NaN), never an image count."""
    text = text.strip()
    if not text and column != "images":
        return math.nan
    low, high = _range(column)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high) or (column in WHOLE and value % 1):
        kind = "a whole number" if column in WHOLE else "a finite number"
        raise _fail(path, f"line {line}: {column} is {printable(text, 40)!r}, not {kind} from {low:g} to {high:g}")
    return value


def _records(text: str, path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header, and each row with its line number; a row with the wrong count of fields names its line."""
    reader = csv.reader(io.StringIO(text))
    rows = []
    try:
        header = next(reader, [])
        for fields in reader:
            if fields and len(fields) != len(header):
                raise _fail(path, f"line {reader.line_num}: {len(fields)} fields, but the header has {len(header)}")
            if fields:
                rows.append((reader.line_num, fields))
    except csv.Error as exc:
        raise _fail(path, f"line {reader.line_num}: not a CSV table ({printable(exc, 200)})") from None
    if len(set(header)) != len(header):
        raise _fail(path, f"a column named twice ({printable(', '.join(header), 200)})")
    return header, rows


def _check_cell(record: dict[str, str], summary: MatrixSummary, line: int, seen: dict[tuple, int], path: Path) -> None:
    """The row names a model, dataset and perturbation matrix.json lists, and a cell no earlier row had."""
    for column, known in (("model", summary.rows), ("dataset", summary.datasets),
                          ("perturbation", summary.perturbations)):
        if record[column] not in known:
            raise _fail(path, f"line {line}: {column} {printable(record[column], 80)!r} is not one of matrix.json's "
                              f"({printable(', '.join(known), 200)})")
    cell = (record["model"], record["dataset"], record["perturbation"])
    if cell in seen:
        raise _fail(path, f"line {line} repeats the cell of line {seen[cell]} ({printable(' / '.join(cell), 200)})")
    seen[cell] = line


def load_matrix(summary: MatrixSummary) -> tuple[pd.DataFrame, list[str]]:
    """matrix.csv checked against its matrix.json: known columns, names matrix.json lists, finite numbers in range.

    A table with cells missing (a truncated file) is kept, with a warning that says how many. Read with the
    csv module and checked cell by cell: a matrix has hundreds of cells, where pandas' overhead is the cost.
    """
    path = summary.folder / MATRIX_CSV
    text, warnings = _csv_text(path)
    header, rows = _records(text, path)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise _fail(path, f"no {', '.join(missing)} column (its columns: {printable(', '.join(header), 200)})")
    metrics = [*METRIC_LABELS, *(f"drop_{m}" for m in METRIC_LABELS)]
    unknown = [c for c in header if c not in (*NAMES, *COUNTS, *metrics)]
    if unknown:
        warnings.append(f"{MATRIX_CSV}: columns left out, not ones the engine writes: {printable(', '.join(unknown), 200)}")
    if not rows:
        raise _fail(path, "no rows")
    columns: dict[str, list] = {c: [] for c in header if c not in unknown}
    seen: dict[tuple, int] = {}
    for line, fields in rows:
        record = dict(zip(header, fields))
        _check_cell(record, summary, line, seen, path)
        for column, values in columns.items():
            values.append(record[column] if column in NAMES else _number(record[column], column, line, path))
    frame = pd.DataFrame({c: v if c in NAMES else np.array(v, dtype=np.float64) for c, v in columns.items()})
    expected = len(summary.rows) * len(summary.datasets) * len(summary.perturbations)
    if len(frame) < expected:
        warnings.append(f"{MATRIX_CSV}: a partial table, {len(frame)} of {expected} cells (the file may be cut short); "
                        "missing cells show as –")
    return frame, warnings


def read_by_source(summary: MatrixSummary) -> tuple[pd.DataFrame | None, list[str]]:
    """by_source.csv checked as matrix.csv is (names matrix.json lists, numbers in range, no row twice), with its
    warnings; None where the matrix has none (no dataset's layout names its sources)."""
    path = summary.folder / BY_SOURCE_CSV
    if not path.is_file():
        return None, []
    text, warnings = _csv_text(path)
    header, rows = _records(text, path)
    missing = [c for c in ("model", "dataset", "perturbation", "source", "count", "auc") if c not in header]
    if missing:
        raise _fail(path, f"no {', '.join(missing)} column (its columns: {printable(', '.join(header), 200)})")
    metrics = [c for c in header if c in METRIC_LABELS]
    records, seen = [], {}
    for line, fields in rows:
        record = dict(zip(header, fields))
        for column, known in (("model", summary.rows), ("dataset", summary.datasets),
                              ("perturbation", summary.perturbations)):
            if record[column] not in known:
                raise _fail(path, f"line {line}: {column} {printable(record[column], 80)!r} is not one of matrix.json's")
        key = (record["model"], record["dataset"], record["perturbation"], record["source"])
        if not _text(record["source"]) or key in seen:
            raise _fail(path, f"line {line}: no source, or the source of line {seen.get(key)} again")
        seen[key] = line
        count = _number(record["count"], "count", line, path)
        records.append({**dict(zip(("model", "dataset", "perturbation", "source"), key)), "count": count,
                        **{m: _number(record[m], m, line, path) for m in metrics}})
    return pd.DataFrame.from_records(records, columns=["model", "dataset", "perturbation", "source", "count",
                                                       *metrics]), warnings


def jpeg_quality(perturbation: str) -> int | None:
    """The quality of a JPEG-only perturbation; the clean row counts as quality 100."""
    if perturbation == CLEAN:
        return 100
    match = re.fullmatch(r"jpeg:(\d+)", perturbation)
    return int(match.group(1)) if match else None


def auc_by_jpeg(frame: pd.DataFrame, dataset: str, metric: str = "auc") -> dict[str, list[tuple[int, float]]]:
    """Per model: (JPEG quality, metric) points, highest quality first; needs at least one JPEG row."""
    part = frame[frame["dataset"] == dataset]
    series: dict[str, list[tuple[int, float]]] = {}
    for model, rows in part.groupby("model", sort=False):
        points = []
        for _, row in rows.iterrows():
            quality = jpeg_quality(str(row["perturbation"]))
            if quality is not None and pd.notna(row[metric]):
                points.append((quality, float(row[metric])))
        if len(points) > 1:
            series[str(model)] = sorted(points, reverse=True)
    return series


@dataclass(frozen=True)
class RowScores:
    """A row's predictions file, and what was wrong with scores.parquet but could be set right (for a warning)."""

    path: Path
    warnings: list[str]


def _scores(summary: MatrixSummary, row: str) -> pd.DataFrame:
    path = summary.folder / SCORES
    if row not in summary.rows:
        raise MatrixStoreError(f"{summary.folder}: no row {printable(row, 80)!r} in this matrix")
    try:
        frame = pd.read_parquet(path, columns=["dataset", "perturbation", "img_name", "target", row])
    except Exception as exc:  # pyarrow raises many kinds for a damaged file: all mean "cannot read it"
        raise _fail(path, f"cannot read {printable(row, 80)!r} from it ({type(exc).__name__}: {printable(exc, 200)})"
                    ) from None
    for column in ("dataset", "perturbation", "img_name"):
        if pd.api.types.infer_dtype(frame[column], skipna=False) not in ("string", "empty"):
            raise _fail(path, f"{column} holds something other than names")
    score = pd.to_numeric(frame[row], errors="coerce")
    target = pd.to_numeric(frame["target"], errors="coerce")
    if not score.dropna().between(0, 1).all() or score.isna().sum() > pd.isna(frame[row]).sum():
        raise _fail(path, f"{printable(row, 80)!r} holds scores that are not probabilities from 0 to 1")
    if not target.isin([0, 1]).all():
        raise _fail(path, "target holds values other than 0 and 1")
    return frame.assign(**{row: score.astype(np.float64), "target": target.astype(np.int64)})


def _unique_images(frame: pd.DataFrame, path: Path, dataset: str) -> tuple[pd.DataFrame, list[str]]:
    """One row per image and perturbation: exact repeats are left out with a warning; differing ones refused."""
    keys = ["perturbation", "img_name"]
    exact = frame.duplicated(keep="first")
    warnings = []
    if exact.any():
        warnings.append(f"{SCORES}: {int(exact.sum()):,} repeated rows of {printable(dataset, 80)!r} left out")
        frame = frame[~exact]
    clash = frame.duplicated(keys, keep=False)
    if clash.any():
        first = frame[clash].iloc[0]
        raise _fail(path, f"image {printable(first['img_name'], 80)!r} of {printable(dataset, 80)!r} appears twice under "
                          f"{printable(first['perturbation'], 80)!r} with different scores or targets")
    return frame, warnings


def row_predictions(summary: MatrixSummary, row: str, dataset: str, perturbation: str) -> RowScores:
    """img_name,target,score,clean_score of one row under one perturbation, as a predictions CSV in the folder.

    scores.parquet is checked: scores are probabilities, targets 0/1, one score per image (exact repeats are
    left out with a warning, conflicting ones refused), as many images as matrix.json recorded (else a warning).
    """
    path = summary.folder / SCORES
    frame = _scores(summary, row)
    frame, warnings = _unique_images(frame[frame["dataset"] == dataset], path, dataset)
    under = frame[frame["perturbation"] == perturbation].reset_index(drop=True)
    clean = frame[frame["perturbation"] == CLEAN].set_index("img_name")[row]
    if under.empty:
        raise MatrixStoreError(f"{path}: no scores for {printable(dataset, 80)} under {printable(perturbation, 80)}")
    expected = summary.sizes.get(dataset)
    if expected is not None and len(under) != expected:
        warnings.append(f"{SCORES}: {len(under):,} images under {printable(perturbation, 80)}, but matrix.json "
                        f"recorded {expected:,} in {printable(dataset, 80)!r}")
    out = pd.DataFrame({"img_name": under["img_name"], "target": under["target"],
                        "score": np.round(under[row].to_numpy(dtype=np.float64), 6)})
    out["pred"] = (out["score"] > 0.5).astype(np.int64)
    out["clean_score"] = np.round(clean.reindex(out["img_name"]).to_numpy(dtype=np.float64), 6)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{row}--{dataset}--{perturbation}")[:200]
    target = summary.folder / "predictions" / f"{safe}.csv"
    with atomic_path(target) as tmp:
        out.to_csv(tmp, index=False)
    return RowScores(target, warnings)


def dataset_folder(summary: MatrixSummary, dataset: str) -> Path | None:
    folder = summary.folders.get(dataset)
    return Path(folder) if folder else None
