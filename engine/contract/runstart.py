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


def create_run(config: Config, runs_dir: Path | str | None = None) -> RunPaths:
    """The run folder with its resolved config.toml; the label files are checked before it exists."""
    config = resolve(config)
    train, _ = training_splits(config.data.root)  # a broken label file stops us before a run folder exists
    check_pseudo_fakes(config.data.pseudo_fakes, train)
    if runs_dir is not None:
        config.run.runs = str(runs_dir)
    paths = create_run_dir(config.run.runs, config.run.name or None, default_stem=config.model.name)
    config.run.name = paths.root.name
    try:
        save_config(paths, config)
    except BaseException:
        shutil.rmtree(paths.root, ignore_errors=True)  # a full or read-only disk leaves no empty run folder behind
        raise
    return paths


def start_run(config: Config, runs_dir: Path | str | None = None) -> Launched:
    """Create the run folder and launch its engine in the background."""
    paths = create_run(config, runs_dir)
    return Launched(paths, config, launch_run(paths, dist=config.dist))


def resume_run(paths: RunPaths, overrides: dict[str, Any] | None = None) -> Launched:
    """Launch a stopped or crashed run's engine again, from its newest checkpoint when it has one."""
    if engine_alive(paths):
        raise FfdvError(f"{paths.root}: the run is still running; watch it with `ffdv watch {paths.root}`")
    # a resume may change how long the run goes on and where its processes run; nothing else
    keep = {k: v for k, v in (overrides or {}).items() if k == "train.epochs" or k.startswith("dist.")}
    config = load_config(paths.config, keep)
    training_splits(config.data.root)
    save_config(paths, config)
    from_checkpoint = any(paths.checkpoints.glob("*.state.pt"))
    seen = load_run(paths.root).last_seq
    pid = launch_run(paths, resume=True, dist=config.dist)
    return Launched(paths, config, pid, after_seq=seen, from_checkpoint=from_checkpoint)
