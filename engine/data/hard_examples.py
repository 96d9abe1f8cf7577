"""Hard examples of a run, from its validations' per-image predictions (``predictions/epoch-NNN.csv``).

Torch-free. Two kinds:

- **wrong since epoch k**: called wrongly in every validation from epoch k on (the model never
  learned them, or learned them and lost them for good);
- **flip-flops**: among the last n validations, at least m call the image differently from the
  validation before (the model keeps changing its mind: the boundary runs through them).

An image is called fake when its score is above the threshold, as everywhere in ffdv.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from engine.contract.errors import DataError
from engine.contract.runstore import atomic_path

EPOCH_FILE = re.compile(r"^epoch-(\d+)\.csv$")
COLUMNS = ["img_name", "target", "score", "reason"]


def score_table(run_dir: Path | str) -> tuple[pd.DataFrame, pd.Series]:
    """(scores: one row per image, one column per validated epoch, oldest first; targets by image)."""
    folder = Path(run_dir) / "predictions"
    files = sorted((int(m.group(1)), p) for p in (folder.iterdir() if folder.is_dir() else [])
                   if (m := EPOCH_FILE.match(p.name)))
    if not files:
        raise DataError(f"{folder}: no validation predictions (epoch-NNN.csv) yet. Fix: let the run validate once.")
    scores, targets = {}, None
    for epoch, path in files:
        try:
            frame = pd.read_csv(path, dtype={"img_name": str}, keep_default_na=False).drop_duplicates("img_name")
            scores[epoch] = frame.set_index("img_name")["score"].astype(float)
            targets = frame.set_index("img_name")["target"].astype(int) if targets is None else targets
        except (ValueError, KeyError, OSError) as exc:
            raise DataError(f"{path}: not a predictions file (img_name,target,score): {exc}") from None
    return pd.DataFrame(scores), targets


def wrong_since(scores: pd.DataFrame, targets: pd.Series, since: int, threshold: float = 0.5) -> pd.Index:
    """Images called wrongly in every validation from epoch ``since`` on (missing from one: not counted)."""
    epochs = [e for e in scores.columns if e >= since]
    if not epochs:
        raise DataError(f"--since {since}: the run has no validation from that epoch on "
                        f"(it has epochs {', '.join(map(str, scores.columns))}).")
    window = scores[epochs].dropna()
    wrong = (window > threshold).ne(targets.reindex(window.index) == 1, axis=0)
    return window.index[wrong.all(axis=1)]


def flip_flops(scores: pd.DataFrame, changes: int, last: int, threshold: float = 0.5) -> pd.Index:
    """Images called differently from the validation before in at least ``changes`` of the last ``last`` validations
    (the first of them compared with none: n validations hold n - 1 changes)."""
    if not 1 <= changes < last:
        raise DataError(f"--flip-flops {changes}/{last}: needs 1 <= m < n (m changes of call in the last n "
                        "validations).")
    window = scores[scores.columns[-last:]].dropna()
    called = (window > threshold).astype(int)
    flips = called.diff(axis=1).abs().sum(axis=1)
    return window.index[flips >= changes]


def hard_frame(scores: pd.DataFrame, targets: pd.Series, names: pd.Index, reason: str) -> pd.DataFrame:
    """img_name,target,score (the latest),reason for the chosen images, most wrong first."""
    latest = scores.iloc[:, -1].reindex(names)
    target = targets.reindex(names)
    frame = pd.DataFrame({"img_name": names, "target": target.to_numpy(), "score": latest.round(6).to_numpy(),
                          "reason": reason})
    wrongness = (frame["score"] - frame["target"]).abs()
    return frame.assign(_w=wrongness).sort_values("_w", ascending=False, kind="stable").drop(columns="_w")


def write_hard_examples(frame: pd.DataFrame, out: Path) -> Path:
    with atomic_path(out) as tmp:
        frame[COLUMNS].to_csv(tmp, index=False)
    return out


def models_disagree(matrix_dir: Path | str, dataset: str | None = None, perturbation: str | None = None,
                    threshold: float = 0.5) -> pd.DataFrame:
    """Images of a finished matrix on which its checkpoints (not its ensembles) do not all make the same call:
    img_name,target,score (the checkpoints' mean),reason, the most split first."""
    from engine.contract.matrixstore import CLEAN, SCORES, MatrixStoreError, read_summary

    perturbation = perturbation or CLEAN

    try:
        summary = read_summary(matrix_dir)
    except MatrixStoreError as exc:
        raise DataError(str(exc)) from None
    members = [c["key"] for c in summary.checkpoints if c.get("kind") == "checkpoint"]
    dataset = dataset or (summary.datasets[0] if summary.datasets else "")
    if len(members) < 2:
        raise DataError(f"{summary.folder}: models disagree needs a matrix of two or more checkpoints "
                        f"(it has {len(members)}).")
    if dataset not in summary.datasets or perturbation not in summary.perturbations:
        raise DataError(f"{summary.folder}: no {dataset!r} under {perturbation!r} (it has {', '.join(summary.datasets)}"
                        f" under {', '.join(summary.perturbations)}). Fix: pass --dataset and --perturbation from them.")
    try:
        frame = pd.read_parquet(summary.folder / SCORES,
                                columns=["dataset", "perturbation", "img_name", "target", *members])
    except (OSError, ValueError, KeyError, ImportError) as exc:
        raise DataError(f"{summary.folder / SCORES}: cannot read the checkpoints' scores ({exc}). "
                        "Fix: run the matrix again (ffdv evaluate keeps its finished cells).") from None
    frame = frame[(frame["dataset"] == dataset) & (frame["perturbation"] == perturbation)].set_index("img_name")
    fakes = (frame[members] > threshold).sum(axis=1)
    split = frame.index[(fakes > 0) & (fakes < len(members))]
    out = hard_frame(frame[members].mean(axis=1).to_frame(), frame["target"].astype(int), split,
                     f"models disagree on {dataset} under {perturbation}")
    balance = (fakes.reindex(out["img_name"]) - len(members) / 2).abs().to_numpy()
    return out.iloc[balance.argsort(kind="stable")]
