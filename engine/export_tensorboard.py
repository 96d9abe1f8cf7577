"""``ffdv export --tensorboard``: runs as TensorBoard event files, written by TensorBoard's own writer.

One sub-folder per run: scalars per step (training loss, learning rate) and per epoch (train
loss, every validation metric), the hyperparameters with the final metrics, and a PR curve of
the best validation. TensorBoard is an optional extra (``pip install ffdv-tui[tensorboard]``):
without it the command says so and writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.contract.errors import FfdvError
from engine.contract.protocol import Step
from engine.contract.roc import read_predictions
from engine.contract.runstore import read_events
from engine.contract.runsummary import RunSummary

EXTRA_MESSAGE = ("--tensorboard needs TensorBoard, an optional extra: pip install 'ffdv-tui[tensorboard]' "
                 "(or pip install tensorboard). --csv works without it.")


def summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise FfdvError(EXTRA_MESSAGE) from None
    return SummaryWriter


def _hparam(value):
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def write_run(writer_class, run: RunSummary, folder: Path) -> Path:
    target = folder / (run.name if run.name not in ("", ".", "..") and "/" not in run.name else "run")
    writer = writer_class(log_dir=str(target))
    try:
        if run.kind == "ffdv" and (run.root / "events.jsonl").is_file():
            for event in read_events(run.root / "events.jsonl"):
                if type(event) is Step:
                    writer.add_scalar("train/loss_step", event.loss, event.step, walltime=event.time)
                    writer.add_scalar("train/lr", event.lr, event.step, walltime=event.time)
        for epoch, loss in sorted(run.train_loss.items()):
            writer.add_scalar("epoch/train_loss", loss, epoch)
        for epoch in run.epochs:
            for metric, value in run.metrics.get(epoch, {}).items():
                writer.add_scalar(f"val/{metric}", value, epoch)
        path = run.best_predictions()
        if path is not None:
            predictions = read_predictions(path)
            writer.add_pr_curve("val/pr_best", predictions.targets.astype(bool), np.clip(predictions.scores, 0, 1),
                                global_step=run.best(run.best_metric).epoch if run.best(run.best_metric) else 0)
        final = {f"hparam/best_{m}": b.value for m in run.metric_names() if (b := run.best(m)) is not None}
        last = run.metrics.get(run.epochs[-1], {}) if run.epochs else {}
        final.update({f"hparam/final_{m}": v for m, v in last.items()})
        hparams = {k: _hparam(v) for k, v in run.settings.items()}
        writer.add_hparams(hparams, final or {"hparam/epochs": 0.0}, run_name=".")
    finally:
        writer.close()
    return target


def export_tensorboard(runs: Sequence[RunSummary], folder: Path | str) -> list[Path]:
    writer_class = summary_writer()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [write_run(writer_class, run, folder) for run in runs]
