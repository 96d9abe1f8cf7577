"""What a finished matrix leaves: matrix.csv, scores.parquet, matrix.json, and the table on the console.

matrix.json records the exact settings (checkpoints with their model, input size and
normalisation, datasets with their label files, perturbation specs, ensembles, TTA
views, seed, batch size, device, versions), so a matrix can be repeated and the app can
list and reopen past evaluations without the engine.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
from rich import box
from rich.table import Table
from rich.text import Text

from engine.console import source_table
from engine.contract.config import versions
from engine.contract.fmt import fmt_metric
from engine.contract.runstore import atomic_path, atomic_write_json
from engine.contract.text import plain_text
from engine.device import DeviceSetup
from engine.ensemble import TTA_SCALES
from engine.matrix import SCORES_FILE, MatrixRunner, Plan, matrix_frames, row_kinds, write_scores
from engine.source_metrics import matrix_by_source

MATRIX_CSV = "matrix.csv"
MATRIX_JSON = "matrix.json"
BY_SOURCE_CSV = "by_source.csv"
DROP_RED = 0.01  # an AUC drop above this is red; a smaller one yellow


def settings(plan: Plan, setup: DeviceSetup) -> dict[str, Any]:
    return {
        "checkpoints": [{"key": m.key, "kind": m.kind, "path": str(m.loaded.path), "sources": m.sources,
                         "weights_sha256": m.weights_sha256 or None, "content": m.content,
                         "model": m.loaded.sidecar.model, "epoch": m.loaded.sidecar.epoch,
                         "img_size": m.spec.img_size, "mean": list(m.spec.mean), "std": list(m.spec.std),
                         "eval_crop": m.spec.eval_crop, "crop": m.spec.crop, "eval_grid": m.spec.eval_grid,
                         "eval_reduce": m.spec.eval_reduce, "stem": m.loaded.sidecar.stem} for m in plan.members],
        "datasets": [{"key": d.key, "folder": str(d.split.folder), "label_file": str(d.split.label_file or "") or None,
                      "images": len(d.split), "layout": d.split.layout} for d in plan.datasets],
        "perturbations": [p.name for p in plan.perturbations],
        "ensembles": plan.ensembles,
        "tta": plan.tta,
        "tta_scales": list(TTA_SCALES),
        "seed": plan.seed,
        "batch_size": plan.batch_size,
        "device": setup.describe(),
    }


def finish_matrix(runner: MatrixRunner, seconds: float) -> dict[str, Any]:
    """Write the tables; the report (matrix.json's content) is returned for the console and the app."""
    plan, out = runner.plan, runner.out
    table, cells = matrix_frames(plan, out)
    csv_path = out / MATRIX_CSV
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False)
    scores_path = write_scores(cells, plan, out / SCORES_FILE)
    by_source = matrix_by_source(plan, cells)
    files = {"matrix": str(csv_path), "scores": str(scores_path), "cells": str(runner.cells)}
    if len(by_source):  # datasets whose layout names sources (generators): a row per model x source
        with atomic_path(out / BY_SOURCE_CSV) as tmp:
            by_source.to_csv(tmp, index=False)
        files["by_source"] = str(out / BY_SOURCE_CSV)
    report = {
        "format": 1,
        "name": out.name,
        "settings": settings(plan, runner.setup),
        "rows": list(row_kinds(plan)),
        "greedy_soup": runner.greedy,
        "files": files,
        "cells": {"computed": runner.computed_cells, "reused": runner.reused_cells},
        "unreadable": {d.key: int(table[(table["dataset"] == d.key) & (table["perturbation"] == "none")]["unreadable"].max())
                       for d in plan.datasets},
        "seconds": round(seconds, 3),
        "time": time.time(),
        "versions": versions(),
    }
    atomic_write_json(out / MATRIX_JSON, report)
    return report


def _cell_text(auc: Any, drop: Any, best: bool) -> Text:
    text = Text(fmt_metric(auc), style="bold" if best else "")
    if drop is not None and auc is not None and abs(drop) >= 0.0005:
        colour = "red" if drop > DROP_RED else "yellow" if drop > 0 else "green"
        text.append(f" {-drop:+.3f}", style=colour)
    return text


def matrix_tables(table: pd.DataFrame, metric: str = "auc") -> list[Table]:
    """One table per dataset: a row per perturbation, a column per model (so eleven perturbations fit a terminal);
    the best of each row bold, the change from the clean row coloured."""
    out = []
    for dataset, part in table.groupby("dataset", sort=False):
        models = list(dict.fromkeys(part["model"]))
        grid = Table(title=plain_text(f"{metric.upper()} on {dataset}"), title_justify="left", box=box.SIMPLE_HEAD,
                     show_edge=False, header_style="bold", padding=(0, 1), pad_edge=False)
        grid.add_column("perturbation", no_wrap=True)
        for name in models:
            grid.add_column(plain_text(name), justify="right", overflow="fold")  # narrow: drops wrap under
        for perturbation, rows in part.groupby("perturbation", sort=False):
            best = rows[metric].max()
            cells = [plain_text(perturbation)]
            by_model = {str(r["model"]): r for _, r in rows.iterrows()}
            for name in models:
                row = by_model[name]
                value = None if pd.isna(row[metric]) else float(row[metric])
                drop = None if pd.isna(row[f"drop_{metric}"]) else float(row[f"drop_{metric}"])
                cells.append(_cell_text(value, drop, value is not None and value == best))
            grid.add_row(*cells)
        out.append(grid)
    return out


def read_matrix_csv(out: Path) -> pd.DataFrame:
    return pd.read_csv(Path(out) / MATRIX_CSV, keep_default_na=True)


def source_tables(path: Path) -> list:
    """The console's per-source tables of a matrix (one per dataset, clean images): a row per model, a column group
    per source and the mean."""
    frame = pd.read_csv(path, keep_default_na=True)
    frame = frame[frame["perturbation"] == "none"].astype(object).where(frame.notna(), None)
    tables = []
    for dataset, rows in frame.groupby("dataset", sort=False):
        grouped = []
        for model, part in rows.groupby("model", sort=False):
            per = {r["source"]: r for r in part.to_dict("records") if r["source"] != "mean"}
            mean = next((r for r in part.to_dict("records") if r["source"] == "mean"), {})
            grouped.append((str(model), per, mean))
        table = source_table(grouped)
        table.title = f"{dataset}: per source"
        tables.append(table)
    return tables
