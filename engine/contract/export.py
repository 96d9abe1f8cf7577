"""``ffdv export --csv``: runs as two tidy tables for pandas (torch-free, standard library only).

``metrics.csv``: one row per run and validation (run, epoch, step, train_loss, every metric).
``runs.csv``: one row per run (every setting as a flat column, status, the best metric with its
epoch, duration, images/s). A setting one run lacks is an empty cell, never a made-up value.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from engine.contract.runstore import atomic_write_text
from engine.contract.runsummary import RunSummary


def _table(header: list[str], rows: list[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue()


def metrics_rows(runs: Sequence[RunSummary]) -> tuple[list[str], list[list]]:
    metrics: dict[str, None] = {}
    for run in runs:
        metrics.update(dict.fromkeys(run.metric_names()))
    header = ["run", "epoch", "step", "train_loss", *metrics]
    rows = []
    for run in runs:
        for epoch in run.epochs:
            values = run.metrics.get(epoch, {})
            step = epoch * run.steps_per_epoch if run.steps_per_epoch else None
            rows.append([run.name, epoch, step, run.train_loss.get(epoch), *(values.get(m) for m in metrics)])
    return header, rows


def runs_rows(runs: Sequence[RunSummary]) -> tuple[list[str], list[list]]:
    settings: dict[str, None] = {}
    for run in runs:
        settings.update(dict.fromkeys(run.settings))
    header = ["run", "kind", "status", "best_metric", "best_value", "best_epoch", "epochs_validated",
              "duration_s", "images_per_sec", *settings]
    rows = []
    for run in runs:
        best = run.best(run.best_metric)
        rows.append([run.name, run.kind, run.status, run.best_metric, best.value if best else None,
                     best.epoch if best else None, len(run.epochs), run.duration, run.images_per_sec,
                     *(_cell(run.settings.get(s)) for s in settings)])
    return header, rows


def _cell(value):
    return list(value) if isinstance(value, tuple) else value


def export_csv(runs: Sequence[RunSummary], folder: Path | str) -> list[Path]:
    """Write metrics.csv and runs.csv into ``folder`` (each atomically); returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (header, rows) in (("metrics.csv", metrics_rows(runs)), ("runs.csv", runs_rows(runs))):
        atomic_write_text(folder / name, _table(header, rows))
        written.append(folder / name)
    return written
