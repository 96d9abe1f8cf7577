"""Starting a run and resuming one: the one way, for ``ffdv train``, the app and a queue.

Torch-free. Both check before anything is written (the dataset's label files, a live
engine), and starting leaves no empty run folder behind when its config cannot be
written (a full or read-only disk).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.contract.config import Config, load_config, resolve, save_config
from engine.contract.errors import FfdvError
from engine.contract.launch import engine_alive, launch_run
from engine.contract.queue import append_to_queue, claim_to_start_now, mark_queued
from engine.contract.runstate import load_run
from engine.contract.runstore import RunPaths, create_run_dir
from engine.data.dataset import training_splits
from engine.data.self_blend import check_pseudo_fakes


@dataclass(frozen=True)
class Launched:
    """A started engine: its run folder, the config it runs and where its new events begin."""

    paths: RunPaths
    config: Config
    pid: int
    after_seq: int = 0  # a resumed run's old end is not this start's
    from_checkpoint: bool = True  # False: resumed before its first checkpoint, so it starts over in the same folder

    @property
    def name(self) -> str:
        return self.paths.root.name


def nothing_to_resume(paths: RunPaths) -> str:
    return (f"{paths.root}: nothing to resume from (the run ended before its first checkpoint); it starts again "
            "from the beginning in the same folder.")


def check_run_inputs(config: Config) -> None:
    """What a run reads before it starts: the label files, the pseudo-fakes setting (DataError, ConfigError)."""
    train, _ = training_splits(config.data.root)
    check_pseudo_fakes(config.data.pseudo_fakes, train)


def create_run(config: Config, runs_dir: Path | str | None = None, queued: bool = False) -> RunPaths:
    """The run folder with its resolved config.toml; the label files are checked before it exists.

    ``queued``: a queued run (engine/contract/queue.py), marked before its config.toml makes it visible."""
    config = resolve(config)
    check_run_inputs(config)  # a broken label file stops us before a run folder exists
    if runs_dir is not None:
        config.run.runs = str(runs_dir)
    paths = create_run_dir(config.run.runs, config.run.name or None, default_stem=config.model.name)
    config.run.name = paths.root.name
    try:
        if queued:
            mark_queued(paths)
        save_config(paths, config)
    except BaseException:
        shutil.rmtree(paths.root, ignore_errors=True)  # a full or read-only disk leaves no empty run folder behind
        raise
    return paths


def queue_run(config: Config, runs_dir: Path | str | None = None) -> RunPaths:
    """A queued run: its folder and config, last in the queue; no engine until a queue runner starts it."""
    paths = create_run(config, runs_dir, queued=True)
    append_to_queue(Path(config.run.runs), paths.root.name)
    return paths


def start_run(config: Config, runs_dir: Path | str | None = None) -> Launched:
    """Create the run folder and launch its engine in the background."""
    paths = create_run(config, runs_dir)
    return Launched(paths, config, launch_run(paths, dist=config.dist))


def resume_run(paths: RunPaths, overrides: dict[str, Any] | None = None) -> Launched:
    """Launch a stopped or crashed run's engine again, from its newest checkpoint when it has one (or a queued run now)."""
    claim_to_start_now(paths)
    if engine_alive(paths):
        raise FfdvError(f"{paths.root}: the run is still running; watch it with `ffdv watch {paths.root}`")
    # a resume may change how long the run goes on, where its processes run and how many loader processes feed
    # them (a run moved to a smaller machine: data.workers is capped by its cores); nothing else
    keep = {k: v for k, v in (overrides or {}).items() if k in ("train.epochs", "data.workers") or k.startswith("dist.")}
    config = load_config(paths.config, keep)
    training_splits(config.data.root)
    save_config(paths, config)
    from_checkpoint = any(paths.checkpoints.glob("*.state.pt"))
    seen = load_run(paths.root).last_seq
    pid = launch_run(paths, resume=True, dist=config.dist)
    return Launched(paths, config, pid, after_seq=seen, from_checkpoint=from_checkpoint)
