"""Reading a finished evaluation matrix (its folder) without torch, and the commands that make or use one.

The app lists a run's past matrices (``evaluations/*/matrix.json``), shows matrix.csv,
turns one row's per-image scores (scores.parquet) into a predictions file with the clean
score beside it (for the "flips from right to wrong" filter). The ``ffdv`` command lines
that start a matrix or write a row's submission are engine.contract.jobs'.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.contract.runstore import atomic_path

MATRIX_JSON = "matrix.json"
MATRIX_CSV = "matrix.csv"
SCORES = "scores.parquet"
CLEAN = "none"


class MatrixStoreError(Exception):
    """A matrix folder that cannot be read; the message names the file."""


@dataclass
class MatrixSummary:
    folder: Path
    name: str
    time: float
    checkpoints: list[dict[str, Any]]
    datasets: list[str]
    perturbations: list[str]
    rows: list[str]
    greedy: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        members = [c["key"] for c in self.checkpoints if c.get("kind") == "checkpoint"]
        return f"{', '.join(members)} on {', '.join(self.datasets)} ({len(self.perturbations)} perturbations)"

    def member(self, key: str) -> dict[str, Any] | None:
        return next((c for c in self.checkpoints if c.get("key") == key), None)


def read_summary(folder: Path | str) -> MatrixSummary:
    folder = Path(folder)
    path = folder / MATRIX_JSON
    try:
        data = json.loads(path.read_text())
        settings = data["settings"]
        return MatrixSummary(
            folder=folder,
            name=str(data.get("name", folder.name)),
            time=float(data.get("time", 0.0)),
            checkpoints=list(settings["checkpoints"]),
            datasets=[d["key"] for d in settings["datasets"]],
            perturbations=list(settings["perturbations"]),
            rows=list(data.get("rows", [])),
            greedy=list((data.get("greedy_soup") or {}).get("ingredients", [])),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MatrixStoreError(f"{path}: not a finished matrix ({type(exc).__name__}: {exc})") from None


def list_matrices(run_dirs: list[Path]) -> list[MatrixSummary]:
    """Every finished matrix in these runs' evaluations/ folders, newest first (unreadable ones left out)."""
    found = []
    for run in dict.fromkeys(Path(r) for r in run_dirs):
        folder = run / "evaluations"
        if not folder.is_dir():
            continue
        for candidate in folder.iterdir():
            if (candidate / MATRIX_JSON).is_file():
                try:
                    found.append(read_summary(candidate))
                except MatrixStoreError:
                    continue
    return sorted(found, key=lambda s: -s.time)


def load_matrix(folder: Path | str) -> pd.DataFrame:
    path = Path(folder) / MATRIX_CSV
    try:
        return pd.read_csv(path, keep_default_na=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise MatrixStoreError(f"{path}: cannot read it ({exc})") from None


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


def row_predictions(summary: MatrixSummary, row: str, dataset: str, perturbation: str) -> Path:
    """img_name,target,score,clean_score of one row under one perturbation, as a predictions CSV in the folder."""
    path = summary.folder / SCORES
    try:
        frame = pd.read_parquet(path, columns=["dataset", "perturbation", "img_name", "target", row])
    except (OSError, ValueError, KeyError, ImportError) as exc:
        raise MatrixStoreError(f"{path}: cannot read {row!r} from it ({exc})") from None
    frame = frame[frame["dataset"] == dataset]
    under = frame[frame["perturbation"] == perturbation].reset_index(drop=True)
    clean = frame[frame["perturbation"] == CLEAN].set_index("img_name")[row]
    if under.empty:
        raise MatrixStoreError(f"{path}: no scores for {dataset} under {perturbation}")
    out = pd.DataFrame({"img_name": under["img_name"], "target": under["target"],
                        "score": np.round(under[row].to_numpy(dtype=np.float64), 6)})
    out["pred"] = (out["score"] > 0.5).astype(np.int64)
    out["clean_score"] = np.round(clean.reindex(out["img_name"]).to_numpy(dtype=np.float64), 6)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{row}--{dataset}--{perturbation}")
    target = summary.folder / "predictions" / f"{safe}.csv"
    with atomic_path(target) as tmp:
        out.to_csv(tmp, index=False)
    return target


def dataset_folder(summary: MatrixSummary, dataset: str) -> Path | None:
    path = summary.folder / MATRIX_JSON
    try:
        for entry in json.loads(path.read_text())["settings"]["datasets"]:
            if entry["key"] == dataset:
                return Path(entry["folder"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None
