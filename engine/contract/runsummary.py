"""One run as a comparison sees it: flat settings, every metric by epoch, curves, speed, status.

Torch-free (the app's comparison screen, ``ffdv compare`` and ``ffdv export`` share it). A
workbench run is read from its event log (the one fold, ``load_run``) and its config.toml; a timm
``train.py`` folder from its summary.csv and args.yaml (read-only: no events, no predictions).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.contract.errors import FfdvError
from engine.contract.launch import run_status
from engine.contract.runstate import load_run
from engine.contract.runstore import RunPaths
from engine.contract.timm_run import is_timm_run, read_timm_run, timm_settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOWER_IS_BETTER = frozenset({"loss", "eer"})
NOT_METRICS = frozenset({"count", "positives", "threshold"})  # a validation's bookkeeping, not a measure
NOT_SETTINGS = ("run.", "meta.")  # the run's own name and versions differ between any two runs: not a setting


@dataclass(frozen=True)
class Best:
    value: float
    epoch: int


@dataclass(frozen=True)
class RunSummary:
    name: str
    root: Path
    kind: str  # "ffdv" or "timm" (read-only)
    status: str
    settings: Mapping[str, Any]
    epochs: tuple[int, ...]  # the validated epochs, 1-based
    metrics: Mapping[int, Mapping[str, float]]  # epoch -> metric -> value (numbers only)
    train_loss: Mapping[int, float]  # epoch -> mean training loss
    images_per_epoch: int = 0
    steps_per_epoch: int = 0
    images_per_sec: float | None = None
    duration: float | None = None
    started_at: float | None = None
    best_metric: str = "auc"
    best_epoch: int | None = None
    predictions: Mapping[int, Path] = field(default_factory=dict)  # epoch -> per-image predictions file
    checkpoint: Path | None = None  # the best weights, for evaluation

    @property
    def data_root(self) -> str:
        return str(self.settings.get("data.root", ""))

    @property
    def model(self) -> str:
        return str(self.settings.get("model.name", ""))

    def metric_names(self) -> list[str]:
        names: dict[str, None] = {}
        for values in self.metrics.values():
            names.update(dict.fromkeys(values))
        return list(names)

    def best(self, metric: str) -> Best | None:
        """The best value of ``metric`` over every validation (not the last), with its epoch; the earliest wins ties."""
        found: Best | None = None
        lower = metric in LOWER_IS_BETTER
        for epoch in self.epochs:
            value = self.metrics.get(epoch, {}).get(metric)
            if value is None:
                continue
            if found is None or (value < found.value if lower else value > found.value):
                found = Best(value, epoch)
        return found

    def best_predictions(self) -> Path | None:
        """The per-image predictions of the best validation (by the run's own best metric)."""
        best = self.best(self.best_metric)
        epoch = self.best_epoch if self.best_epoch in self.predictions else (best.epoch if best else None)
        return self.predictions.get(epoch) if epoch is not None else None


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections as dotted names: {"optim": {"lr": 1e-3}} -> {"optim.lr": 1e-3}."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value if not isinstance(value, list) else tuple(value)
    return flat


def _numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if type(v) in (int, float) and v == v and k not in NOT_METRICS}


def inside(root: Path, relative: str) -> bool:
    """A path from the event log stays inside its run folder (a forged ``../`` is not followed)."""
    try:
        return (root / relative).resolve().is_relative_to(root.resolve())
    except (OSError, ValueError):
        return False


def read_settings(config_path: Path) -> dict[str, Any]:
    try:
        with config_path.open("rb") as handle:
            config = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return {}  # a damaged config: the run is still compared on what its events say
    return {k: v for k, v in flatten(config).items() if not k.startswith(NOT_SETTINGS)}


def summarize_ffdv(root: Path) -> RunSummary:
    paths = RunPaths(root)
    state = load_run(root)
    settings = read_settings(paths.config) or {k: v for k, v in flatten(state.config).items()
                                               if not k.startswith(NOT_SETTINGS)}
    metrics = {epoch: _numbers(v.metrics) for epoch, v in sorted(state.validations.items())}
    predictions = {epoch: root / rel for epoch, rel in state.predictions.items() if inside(root, rel)}
    for csv_path in paths.predictions.glob("epoch-*.csv") if not predictions else ():
        digits = csv_path.stem.removeprefix("epoch-")
        if digits.isdigit():
            predictions[int(digits)] = csv_path
    best = paths.checkpoints / "best.safetensors"
    return RunSummary(
        name=root.resolve().name, root=root, kind="ffdv", status=str(run_status(paths, state)), settings=settings,
        epochs=tuple(metrics), metrics=metrics, train_loss=dict(state.epoch_losses), images_per_epoch=state.num_train,
        steps_per_epoch=state.steps_per_epoch, images_per_sec=state.images_per_sec, duration=state.duration,
        started_at=state.started_at,
        best_metric=state.best_metric, best_epoch=state.best_epoch, predictions=predictions,
        checkpoint=best if best.exists() else None,
    )


def summarize_timm(root: Path) -> RunSummary:
    run = read_timm_run(root)
    try:
        started = min(p.stat().st_mtime for p in (root / "args.yaml", root / "summary.csv"))
        duration = (root / "summary.csv").stat().st_mtime - started
    except OSError:
        started = duration = None
    return RunSummary(
        name=root.resolve().name, root=root, kind="timm", status="finished", settings=timm_settings(run.args),
        epochs=run.epochs, metrics=run.metrics, train_loss=run.train_loss, started_at=started, duration=duration,
        best_metric="auc" if any("auc" in m for m in run.metrics.values()) else "accuracy",
        checkpoint=run.best_checkpoint,
    )


def is_run_folder(folder: Path) -> bool:
    return (folder / "config.toml").is_file() or is_timm_run(folder)


def find_run_folder(value: str, runs: str | Path) -> Path:
    """A run folder (the workbench's or timm's) from what a user typed: a path, or a name under ``runs``."""
    for candidate in (Path(value), Path(runs) / value):
        if is_run_folder(candidate):
            return candidate
    raise FfdvError(f"{value}: no run folder here or in {runs}/ (a run has a config.toml; a timm train.py "
                    "output folder has summary.csv and args.yaml). Fix: name a run that `ffdv runs` lists.")


def summarize(root: Path | str) -> RunSummary:
    root = Path(root)
    if is_timm_run(root):
        return summarize_timm(root)
    if not (root / "config.toml").is_file():
        raise FfdvError(f"{root}: not a run folder (no config.toml, and not a timm output folder).")
    return summarize_ffdv(root)
