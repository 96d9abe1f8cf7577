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


def timm_folders(runs_root: Path | str) -> list[Path]:
    """The timm output folders in a runs folder, by name; none when it is missing or cannot be read."""
    try:
        return sorted(folder for folder in Path(runs_root).iterdir() if is_timm_run(folder))
    except OSError:
        return []


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


def timm_config(args: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """timm's arguments in the sections of a run's config (the settings the app filters and compares by)."""
    config: dict[str, dict[str, Any]] = {}
    for name, value in timm_settings(args).items():
        section, key = name.split(".", 1)
        config.setdefault(section, {})[key] = value
    return config


def timm_events(run: TimmRun) -> list:
    """The run as the events the workbench's engine would have written: the one fold (RunState) reads it."""
    from engine.contract.protocol import EpochEnded, RunFinished, RunStarted, Validated

    config = timm_config(run.args)
    config.setdefault("train", {})["best_metric"] = best = (
        "auc" if any("auc" in m for m in run.metrics.values()) else "accuracy")
    events: list = [RunStarted(seq=1, run_id=run.root.name, config=config, model=str(run.args.get("model", "")),
                               device="timm train.py (read-only)", epochs=len(run.epochs), steps_per_epoch=0,
                               num_train=0, num_val=0)]
    best_value = None
    for epoch in run.epochs:
        if epoch in run.train_loss:
            events.append(EpochEnded(seq=len(events) + 1, epoch=epoch - 1, train_loss=run.train_loss[epoch],
                                     duration_s=0.0, images_per_sec=0.0))
        metrics = run.metrics.get(epoch, {})
        value = metrics.get(best)
        is_best = value is not None and (best_value is None or value > best_value)
        best_value = value if is_best else best_value
        events.append(Validated(seq=len(events) + 1, epoch=epoch, metrics=dict(metrics), num_images=0,
                                best_metric=best, is_best=is_best))
    events.append(RunFinished(seq=len(events) + 1, status="completed", epochs_completed=len(run.epochs)))
    return events


class TimmFollower:
    """A timm output folder followed like a run folder (``poll``, ``state``, ``problem``), read again whenever
    its summary.csv changes (timm appends a row per epoch)."""

    def __init__(self, folder: Path | str):
        from engine.contract.runstate import RunState
        from engine.contract.runstore import RunPaths

        self.paths = RunPaths(Path(folder))
        self.state = RunState(run_id=self.paths.root.name)
        self.problem: str | None = None
        self._seen: float | None = None

    def poll(self) -> list:
        from engine.contract.runstate import RunState

        try:
            mtime = (self.paths.root / SUMMARY).stat().st_mtime
        except OSError as exc:
            self.problem = f"{self.paths.root / SUMMARY}: {exc.strerror or exc}"
            return []
        if mtime == self._seen:
            return []
        self._seen = mtime
        try:
            events = timm_events(read_timm_run(self.paths.root))
        except FfdvError as exc:
            self.problem = str(exc)
            return []
        self.problem = None
        self.state = RunState(run_id=self.paths.root.name)
        self.state.apply(events)
        try:  # timm writes args.yaml at the start and summary.csv after each epoch: the run's span
            self.state.started_at = min((self.paths.root / ARGS).stat().st_mtime, mtime)
        except OSError:
            self.state.started_at = mtime
        if self.state.finished is not None:
            self.state.finished.time = mtime
        self.state.last_time = mtime
        return events
