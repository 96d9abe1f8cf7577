"""Several runs side by side: the settings that differ, the best of every metric, speed, status, ROC.

Torch-free: ``ffdv compare`` prints :func:`compare_table`, the app's comparison screen draws
the same table and the same ROC curves. "Best" is the best validation of a run (with its
epoch), never the last. Runs of different datasets are compared in the table (a note says
so), but their ROC curves are overlaid only when they judged the same validation images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.contract.errors import FfdvError
from engine.contract.fmt import fmt_duration
from engine.contract.protocol import METRIC_LABELS
from engine.contract.roc import Roc, read_predictions, roc_curve
from engine.contract.runsummary import LOWER_IS_BETTER, RunSummary
from engine.contract.text import printable

FIXED_COLUMNS = ("run", "status")
TAIL_COLUMNS = ("img/s", "duration")


@dataclass(frozen=True)
class Cell:
    text: str
    value: Any = None  # what the column sorts by (None sorts last)


@dataclass(frozen=True)
class CompareTable:
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    names: tuple[str, ...]  # the run of each row


@dataclass(frozen=True)
class Comparison:
    runs: tuple[RunSummary, ...]
    differing: tuple[str, ...]  # settings whose values are not the same in every run
    metrics: tuple[str, ...]  # metrics any run validated, in display order
    notes: tuple[str, ...]  # what the reader must know (different datasets, read-only runs)

    def run(self, name: str) -> RunSummary:
        return next(r for r in self.runs if r.name == name)


def differing_settings(runs: Sequence[RunSummary]) -> list[str]:
    """Settings (flat names) whose value is not the same in every run; a setting one run lacks differs."""
    names: dict[str, None] = {}
    for run in runs:
        names.update(dict.fromkeys(run.settings))
    missing = object()
    return [name for name in names if len({repr(r.settings.get(name, missing)) for r in runs}) > 1]


def compare(runs: Sequence[RunSummary]) -> Comparison:
    if not runs:
        raise FfdvError("nothing to compare: name two runs or more")
    metrics: dict[str, None] = dict.fromkeys(m for m in METRIC_LABELS if any(r.best(m) for r in runs))
    for run in runs:
        metrics.update(dict.fromkeys(m for m in run.metric_names() if m not in metrics))
    notes = []
    roots = sorted({r.data_root for r in runs})
    if len(roots) > 1:
        notes.append("different datasets (data.root: " + ", ".join(printable(r or "?", 60) for r in roots)
                     + "): their metrics are not measured on the same images")
    timm = [r.name for r in runs if r.kind == "timm"]
    if timm:
        notes.append("read-only timm runs (curves from summary.csv, no per-image predictions): "
                     + ", ".join(printable(n, 60) for n in timm))
    return Comparison(tuple(runs), tuple(differing_settings(runs)), tuple(metrics), tuple(notes))


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def _setting_text(value: Any) -> str:
    return "–" if value is None else printable(value, 40)


def _number(value: float | None, digits: int = 4, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _duration(seconds: float | None, signed: bool = False) -> str:
    if seconds is None:
        return "–"
    if not signed:
        return fmt_duration(seconds)
    return ("-" if seconds < 0 else "+") + fmt_duration(abs(seconds))


def _row(run: RunSummary, comparison: Comparison, base: RunSummary | None) -> tuple[Cell, ...]:
    """One run's cells; with a baseline (not this run), numbers are differences from it and equal settings '='."""
    against = base if base is not None and base is not run else None
    mark = "◆ " if base is run else ""
    cells = [Cell(mark + printable(run.name, 80), run.name), Cell(printable(run.status, 20), run.status)]
    for name in comparison.differing:
        value = run.settings.get(name)
        same = against is not None and repr(value) == repr(against.settings.get(name))
        cells.append(Cell("=" if same else _setting_text(value), _sortable(value)))
    for metric in comparison.metrics:
        best = run.best(metric)
        if best is None:
            cells.append(Cell("–"))
            continue
        other = against.best(metric) if against is not None else None
        shown = _number(best.value - other.value, signed=True) if other is not None else _number(best.value)
        cells.append(Cell(f"{shown} @{best.epoch}", best.value))
    speed = run.images_per_sec
    base_speed = against.images_per_sec if against is not None else None
    cells.append(Cell(_number(speed - base_speed, 1, True) if speed is not None and base_speed is not None
                      else _number(speed, 1), speed))
    base_time = against.duration if against is not None else None
    cells.append(Cell(_duration(run.duration - base_time, True) if run.duration is not None and base_time is not None
                      else _duration(run.duration), run.duration))
    return tuple(cells)


def _sortable(value: Any) -> Any:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else (None if value is None else str(value))


def columns_of(comparison: Comparison) -> tuple[str, ...]:
    metrics = tuple(f"best {metric_label(m)}" for m in comparison.metrics)
    return (*FIXED_COLUMNS, *comparison.differing, *metrics, *TAIL_COLUMNS)


def compare_table(comparison: Comparison, baseline: str | None = None, sort: str | None = None,
                  descending: bool = False) -> CompareTable:
    """The table, one row per run; ``baseline`` pins a run first and shows the others as differences from it;
    ``sort`` orders the rest by a column's values (empty cells last)."""
    base = next((r for r in comparison.runs if r.name == baseline), None)
    rows = [(_row(run, comparison, base), run.name) for run in comparison.runs]
    columns = columns_of(comparison)
    if sort in columns:
        index = columns.index(sort)
        rows = sort_rows(rows, index, descending)
    if base is not None:
        rows.sort(key=lambda row: row[1] != base.name)  # stable: the baseline first, the others as sorted
    return CompareTable(columns, tuple(cells for cells, _ in rows), tuple(name for _, name in rows))


def sort_rows(rows: list, index: int, descending: bool) -> list:
    """Numbers before text; empty cells last whichever the direction."""
    present = [row for row in rows if row[0][index].value is not None]
    empty = [row for row in rows if row[0][index].value is None]
    numbers = [row for row in present if isinstance(row[0][index].value, (int, float))]
    texts = [row for row in present if not isinstance(row[0][index].value, (int, float))]
    numbers.sort(key=lambda row: row[0][index].value, reverse=descending)
    texts.sort(key=lambda row: row[0][index].value, reverse=descending)
    return numbers + texts + empty


def better_is_lower(column: str) -> bool:
    return any(column == f"best {metric_label(m)}" for m in LOWER_IS_BETTER)


@dataclass(frozen=True)
class RocSet:
    """The ROC curves that may be overlaid (same validation images as the reference run) and why others are not."""

    curves: tuple[tuple[str, Roc], ...]
    left_out: tuple[tuple[str, str], ...]
    reference: str | None = None


def roc_set(comparison: Comparison, baseline: str | None = None) -> RocSet:
    """Each run's ROC of its best validation; the reference split is the baseline's (else the first run's with one)."""
    found: list[tuple[str, Roc, str]] = []
    left_out: list[tuple[str, str]] = []
    for run in comparison.runs:
        path = run.best_predictions()
        if path is None:
            left_out.append((run.name, "no per-image predictions"))
            continue
        try:
            predictions = read_predictions(path)
        except FfdvError as exc:
            left_out.append((run.name, str(exc)))
            continue
        if predictions.targets.size == 0 or len(set(predictions.targets.tolist())) < 2:
            left_out.append((run.name, "its validation has one class only: no ROC"))
            continue
        found.append((run.name, roc_curve(predictions.targets, predictions.scores), predictions.split_key))
    keys = {name: key for name, _, key in found}
    reference = baseline if baseline in keys else (found[0][0] if found else None)
    curves = []
    for name, roc, key in found:
        if key == keys.get(reference):
            curves.append((name, roc))
        else:
            left_out.append((name, "another validation split than " + printable(reference, 60) + ": not overlaid"))
    return RocSet(tuple(curves), tuple(left_out), reference)
