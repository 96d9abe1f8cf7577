"""What the app shows of one run at one moment: built by the watcher thread, never changed after.

The watcher folds events into a RunState it alone touches; the screen and its widgets only
ever hold these frozen copies (Memray's live reporter works the same way), so nothing on
the render path takes a lock or reads a structure another thread is changing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from engine.contract.launch import Exit
from engine.contract.protocol import Heartbeat
from engine.contract.runstate import RunState
from engine.contract.runstore import RunPaths
from engine.contract.runsummary import LOWER_IS_BETTER, NOT_METRICS, NOT_SETTINGS, RunSummary, flatten, inside
from engine.contract.status import LIVE_STATUSES, RunStatus
from engine.contract.timm_run import is_timm_run

WARNINGS_SHOWN = 2


@dataclass(frozen=True)
class Validation:
    epoch: int
    metrics: Mapping[str, Any]


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


# eq=False: a snapshot is new exactly when something changed, so identity is equality (and cheap for reactives).
@dataclass(frozen=True, eq=False)
class RunSnapshot:
    name: str
    paths: RunPaths
    status: RunStatus = RunStatus.STARTING
    exit: Exit | None = None
    log: tuple[str, ...] = ()
    data_root: str | None = None
    started_at: float | None = None
    device: str = ""
    world_size: int = 1
    epochs: int = 0
    epoch: int = 0
    epoch_step: int = 0
    steps_per_epoch: int = 0
    step: int = 0
    num_train: int = 0
    lr: float | None = None
    images_per_sec: float | None = None
    duration: float | None = None
    heartbeat: Heartbeat | None = None  # the newest (the fold replaces it, never changes it)
    loss_steps: tuple[float, ...] = ()
    loss_values: tuple[float, ...] = ()
    validations: tuple[Validation, ...] = ()
    best_metric: str = "auc"
    best_epoch: int | None = None
    best_value: float | None = None
    warnings: tuple[str, ...] = ()  # the newest few
    leaky_validation: str = ""  # the engine's warning when the last leakage audit flagged the validation split
    last_error: str | None = None
    newer_protocol: int | None = None
    problem: str | None = None  # the run folder is damaged: why
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # flat: {"optim.lr": 0.001}
    epoch_losses: Mapping[int, float] = field(default_factory=lambda: MappingProxyType({}))  # epoch -> mean train loss
    predictions: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))  # epoch -> path in the folder

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @classmethod
    def of(cls, name: str, paths: RunPaths, state: RunState, status: RunStatus, exit: Exit | None,
           log: list[str], problem: str | None = None) -> RunSnapshot:
        """Copy what the screen shows out of ``state`` (call it on the thread that folds the events)."""
        steps, values = state.loss.points()
        validations = tuple(Validation(v.epoch, _frozen(v.metrics)) for v in state.validations.values())
        config = state.config if isinstance(state.config, Mapping) else {}
        data = config.get("data") if isinstance(config.get("data"), Mapping) else {}
        root = data.get("root")
        best = state.best_value
        return cls(
            name=name, paths=paths, status=status, exit=exit, log=tuple(log),
            data_root=root if isinstance(root, str) else None, started_at=state.started_at, device=state.device,
            world_size=state.world_size, epochs=state.epochs, epoch=state.epoch, epoch_step=state.epoch_step,
            steps_per_epoch=state.steps_per_epoch, step=state.step, num_train=state.num_train, lr=state.lr,
            images_per_sec=state.images_per_sec, duration=state.duration, heartbeat=state.heartbeat,
            loss_steps=tuple(steps), loss_values=tuple(values), validations=validations,
            best_metric=state.best_metric, best_epoch=state.best_epoch,
            best_value=best if isinstance(best, (int, float)) else None,
            warnings=tuple(str(w) for w in state.warnings[-WARNINGS_SHOWN:]),
            leaky_validation=str(state.leaky_validation),
            last_error=state.errors[-1].message if state.errors else None,
            newer_protocol=state.newer_protocol, problem=problem, settings=_settings(config),
            epoch_losses=_frozen(state.epoch_losses), predictions=_frozen(state.predictions),
        )

    def summary(self) -> RunSummary:
        """The run as a comparison reads it (``engine.contract.runsummary``), from what the watcher already folded:
        opening a comparison replays no event log."""
        metrics = {v.epoch: {k: float(x) for k, x in v.metrics.items()
                             if type(x) in (int, float) and x == x and k not in NOT_METRICS} for v in self.validations}
        root = self.paths.root
        timm = is_timm_run(root)
        return RunSummary(
            name=self.name, root=root, kind="timm" if timm else "ffdv", status=str(self.status), settings=self.settings,
            epochs=tuple(sorted(metrics)), metrics=metrics, train_loss=self.epoch_losses,
            images_per_epoch=self.num_train, steps_per_epoch=self.steps_per_epoch, images_per_sec=self.images_per_sec,
            duration=self.duration, started_at=self.started_at, best_metric=self.best_metric, best_epoch=self.best_epoch,
            predictions={e: root / p for e, p in self.predictions.items() if isinstance(p, str) and inside(root, p)},
        )

    @property
    def model(self) -> str:
        return str(self.settings.get("model.name", ""))

    def best(self, metric: str) -> float | None:
        """The best value of ``metric`` over the run's validations (not the last; lower is better for loss, EER)."""
        values = [v.metrics.get(metric) for v in self.validations]
        values = [v for v in values if type(v) in (int, float) and v == v]
        if not values:
            return None
        return min(values) if metric in LOWER_IS_BETTER else max(values)


_SETTINGS_CACHE: dict[int, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}


def _settings(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The run's settings, flat; made once per config (a live run's snapshots share its unchanged config)."""
    cached = _SETTINGS_CACHE.get(id(config))
    if cached is not None and cached[0] is config:
        return cached[1]
    flat = MappingProxyType({k: v for k, v in flatten(config).items() if not k.startswith(NOT_SETTINGS)})
    if len(_SETTINGS_CACHE) > 4096:
        _SETTINGS_CACHE.clear()
    _SETTINGS_CACHE[id(config)] = (config, flat)
    return flat
