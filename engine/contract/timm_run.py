"""A timm ``train.py`` output folder (summary.csv, args.yaml, checkpoints) read as a read-only run.

Torch-free: the app lists, compares and exports such a folder beside the workbench's own runs.
timm writes one summary row per epoch (0-based ``epoch``, ``train_loss``, ``eval_loss``,
``eval_top1`` in percent, ...) and its arguments with ``yaml.safe_dump``; both are read as data.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.contract.errors import FfdvError

SUMMARY = "summary.csv"
ARGS = "args.yaml"
CHECKPOINT_GLOBS = ("model_best.pth.tar", "checkpoint-*.pth.tar", "last.pth.tar")

# timm's argument names -> the workbench's settings, so both kinds of run line up in one table.
SETTING_NAMES = {
    "model": "model.name",
    "lr": "optim.lr",
    "opt": "optim.optimizer",
    "weight_decay": "optim.weight_decay",
    "sched": "optim.schedule",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "seed": "train.seed",
    "img_size": "data.img_size",
    "data_dir": "data.root",
    "data": "data.root",
    "drop": "model.drop_rate",
    "drop_path": "model.drop_path_rate",
    "model_ema": "train.ema",
    "smoothing": "optim.label_smoothing",
}
# summary.csv columns -> the workbench's metric names (top1 is a percentage there).
METRIC_COLUMNS = {"eval_loss": ("loss", 1.0), "eval_top1": ("accuracy", 0.01), "eval_auc": ("auc", 1.0)}


@dataclass(frozen=True)
class TimmRun:
    root: Path
    args: dict[str, Any]
    epochs: tuple[int, ...]  # 1-based, like the workbench's
    train_loss: dict[int, float]
    metrics: dict[int, dict[str, float]]
    best_checkpoint: Path | None


def is_timm_run(folder: Path) -> bool:
    """A timm output folder: summary.csv beside args.yaml, and no config.toml of the workbench."""
    return (folder / SUMMARY).is_file() and (folder / ARGS).is_file() and not (folder / "config.toml").exists()


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is None or value == value else None


def read_args(path: Path) -> dict[str, Any]:
    import yaml  # timm's own dependency; safe_load builds plain data only

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        raise FfdvError(f"{path}: cannot read ({exc.strerror or exc}).") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise FfdvError(f"{path}: {line}not YAML ({getattr(exc, 'problem', exc)}). "
                        "Fix: restore the args.yaml that timm's train.py wrote.") from None
    return data if isinstance(data, dict) else {}


def read_timm_run(folder: Path | str) -> TimmRun:
    folder = Path(folder)
    args = read_args(folder / ARGS)
    epochs: list[int] = []
    train_loss: dict[int, float] = {}
    metrics: dict[int, dict[str, float]] = {}
    try:
        with (folder / SUMMARY).open(newline="", encoding="utf-8", errors="replace") as handle:
            for row in csv.DictReader(handle):
                epoch = _number(row.get("epoch"))
                if epoch is None:
                    continue
                epoch = int(epoch) + 1
                epochs.append(epoch)
                loss = _number(row.get("train_loss"))
                if loss is not None:
                    train_loss[epoch] = loss
                metrics[epoch] = {name: value * scale for column, (name, scale) in METRIC_COLUMNS.items()
                                  if (value := _number(row.get(column))) is not None}
    except OSError as exc:
        raise FfdvError(f"{folder / SUMMARY}: cannot read ({exc.strerror or exc}).") from None
    best = folder / "model_best.pth.tar"
    return TimmRun(folder, args, tuple(epochs), train_loss, metrics, best if best.is_file() else None)


def timm_settings(args: dict[str, Any]) -> dict[str, Any]:
    """timm's arguments as flat settings: known ones under the workbench's names, the rest as ``timm.NAME``."""
    flat: dict[str, Any] = {}
    for key, value in args.items():
        if isinstance(value, (dict, list)):
            value = str(value)
        flat[SETTING_NAMES.get(str(key), f"timm.{key}")] = value
    return flat
