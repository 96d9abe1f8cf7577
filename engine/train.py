"""The training run: epochs of steps, a validation after each, checkpoints, events all along.

The hot loop follows the engine's performance rules (ARCHITECTURE.md): uint8 batches normalised on the
device, no host-device sync per step (losses stay on the device until a Step event
is due, a few per second at most and about 250 per epoch), commands and signals
read between steps with one ``stat``. Everything a viewer sees arrives as an event
after the files it mentions exist. The parts of a run are built by
``engine/train_parts.py``, what one step computes lives in ``engine/step.py``.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.bad_images import BadImages
from engine.checkpoint_store import load_training_state, newest_resumable
from engine.contract.config import Config, resolve_workers, versions
from engine.contract.errors import FfdvError, storage_error
from engine.contract.protocol import (
    COMPLETED,
    FAILED,
    STOPPED,
    CheckpointSaved,
    EpochEnded,
    Heartbeat,
    PredictionsWritten,
    Resumed,
    RunError,
    RunFinished,
    RunStarted,
    RunWarning,
    Step,
    Validated,
)
from engine.contract.runstore import RunPaths, atomic_path, remove_leftover_temporaries
from engine.contract.sidecar import Sidecar
from engine.control import Control
from engine.data.dataset import Dataset
from engine.data.leakage import leakage_warning
from engine.data.sample_weights import weighted_images
from engine.device import memory_and_utilization
from engine.distributed import DistContext, destroy_process_group, gather_objects, record_rank_error
from engine.inference import predictions_frame
from engine.loader import sample_seed
from engine.models import plain_module
from engine.sink import EventSink
from engine.step import empty_ddp_step, forward_backward, optimizer_step
from engine.train_parts import TrainingParts, build_parts
from engine.validation import Validation, validate

STEP_EVENT_INTERVAL_S = 1.0
STEP_EVENTS_PER_EPOCH = 250
HEARTBEAT_INTERVAL_S = 10.0


def _sig(value: float, digits: int = 6) -> float:
    """Six significant digits: what a curve can show, and a third of the bytes of a full float in the log."""
    return float(f"{value:.{digits}g}")


@dataclass
class LossWindow:
    """Losses summed on the device since the last Step event (read back only when one is due)."""

    loss: torch.Tensor
    steps: int = 0
    images: int = 0
    started: float = field(default_factory=time.monotonic)

    def add(self, loss: torch.Tensor, images: int) -> None:
        self.loss += loss
        self.steps += 1
        self.images += images

    def reset(self, now: float) -> None:
        self.loss.zero_()
        self.steps = self.images = 0
        self.started = now


def run_sidecar(config: Config, p: TrainingParts, paths: RunPaths, metrics: dict[str, Any] | None) -> Sidecar:
    """What a checkpoint of this run says about itself: the model and its input, so it can be used alone."""
    return Sidecar(
        model=config.model.name, img_size=p.spec.img_size, mean=tuple(p.spec.mean),
        std=tuple(p.spec.std), eval_crop=p.spec.eval_crop, crop=p.spec.crop, eval_grid=p.spec.eval_grid,
        eval_reduce=p.spec.eval_reduce, stem=config.model.stem, weights="ema" if p.ema is not None else "model",
        sample_weights=weighted_images(p.loaders.train_sampler.repeats, p.train_split),
        metrics=metrics, run=paths.root.name, config=config.to_dict(), versions=versions(),
    )


class Trainer:
    """One training run in one process (one rank of several under torchrun)."""

    def __init__(self, paths: RunPaths, config: Config, sink: EventSink, dist_ctx: DistContext | None = None):
        self.paths = paths
        self.config = config
        self.sink = sink
        self.dist = dist_ctx or DistContext()
        self.rank = self.dist.rank
        self.world_size = self.dist.world_size
        self.control = Control(paths if self.dist.is_main else None, sink)
        self.bad_images = BadImages(paths, sink, config.data.on_bad_image, self.dist)
        self.started = time.time()
        self.parts: TrainingParts | None = None  # built by setup
        self.resumed_from: str | None = None
        self.epoch = 0  # epochs completed
        self.epoch_step = 0  # steps done in the current epoch
        self.global_step = 0
        self.num_updates = 0
        self.next_heartbeat = 0.0
        self.last_checkpoint = time.monotonic()

    @property
    def built(self) -> TrainingParts:
        assert self.parts is not None, "setup() builds the parts first"
        return self.parts

    # ------------------------------------------------------------ setup and state

    def setup(self, resume: bool) -> None:
        self.parts = build_parts(self.config, self.paths, self.dist)
        for note in self.parts.notes:
            self.sink.emit(RunWarning(message=f"pretrained weights: {note}", code="pretrained_partial"))
        if self.dist.is_main:
            for note in self.parts.checkpoints.recover():
                self.sink.emit(RunWarning(message=note, code="checkpoint_recovered"))
            for folder in (self.paths.root, self.paths.predictions):  # a predictions file or config a kill cut short
                remove_leftover_temporaries(folder)
        self.resumed_from = self._restore() if resume else None

    def training_state(self) -> dict[str, Any]:
        """The state to resume from; RNG states of every rank (a collective: all ranks call this)."""
        p = self.built
        rng = gather_objects(self.dist, (torch.get_rng_state(),
                                         torch.cuda.get_rng_state_all() if p.device.is_cuda else []))
        return {
            "format": 1,
            "model": plain_module(p.model).state_dict(),
            "optimizer": p.optimizer.state_dict(),
            "scaler": p.scaler.state_dict(),
            "ema": p.ema.state_dict() if p.ema is not None else None,
            "epoch": self.epoch,
            "epoch_step": self.epoch_step,
            "global_step": self.global_step,
            "num_updates": self.num_updates,
            "world_size": self.world_size,
            "rng_cpu": [r[0] for r in rng],
            "rng_cuda": [r[1] for r in rng],
        }

    def _restore(self) -> str | None:
        found = newest_resumable(self.paths.checkpoints)
        if found is None:  # it ended before its first checkpoint: nothing is lost by starting over
            if self.dist.is_main:
                self.sink.emit(RunWarning(
                    message=f"nothing to resume from: {self.paths.checkpoints} holds no checkpoint with training state "
                            "(the run ended before its first one). Starting it again from the beginning in the same "
                            "folder.", code="resume_from_start"))
            return None
        state_path, _record = found
        state = load_training_state(state_path)
        p = self.built
        plain_module(p.model).load_state_dict(state["model"])
        p.optimizer.load_state_dict(state["optimizer"])
        p.scaler.load_state_dict(state["scaler"])
        if p.ema is not None and state.get("ema") is not None:
            p.ema.load_state_dict(state["ema"])
        self.epoch, self.epoch_step = int(state["epoch"]), int(state["epoch_step"])
        self.global_step, self.num_updates = int(state["global_step"]), int(state["num_updates"])
        rng_cpu, rng_cuda = state["rng_cpu"], state.get("rng_cuda") or []
        if isinstance(rng_cpu, list):  # one state per rank; a run resumed with fewer/more ranks reuses rank 0's
            index = self.rank if self.rank < len(rng_cpu) else 0
            rng_cpu, rng_cuda = rng_cpu[index], (rng_cuda[index] if index < len(rng_cuda) else [])
        torch.set_rng_state(rng_cpu)
        if p.device.is_cuda and rng_cuda:
            torch.cuda.set_rng_state_all(rng_cuda)
        p.scheduler.step_update(self.num_updates)
        self.bad_images.load()
        return state_path.name.removesuffix(".state.pt")

    # ------------------------------------------------------------ the run

    def run(self, resume: bool = False) -> RunFinished:
        self.control.install_signal_handlers()
        try:
            self.setup(resume)
            self._started_event()
            status = self._loop()
            return self._finish(status, "")
        except FfdvError as exc:
            return self._fail(exc, str(exc), "")
        except OSError as exc:
            described = storage_error(exc)
            if described is None:
                self._fail(exc, f"{type(exc).__name__}: {exc}", traceback.format_exc())
                raise
            return self._fail(described, str(described), "")
        except Exception as exc:
            self._fail(exc, f"{type(exc).__name__}: {exc}", traceback.format_exc())
            raise
        finally:
            self.control.restore_signal_handlers()
            destroy_process_group()

    def _fail(self, exc: BaseException, message: str, trace: str) -> RunFinished:
        """Report a failure with the rank it happened on; other ranks' errors reach the log through rank 0."""
        if not self.dist.is_main:
            record_rank_error(self.paths, self.dist, exc)
        else:
            for other in self.paths.rank_errors():
                self.sink.emit(RunError(message=other.get("message", ""), traceback=other.get("traceback", ""),
                                        rank=int(other.get("rank", -1))))
        self.sink.emit(RunError(message=message, traceback=trace, rank=self.rank))
        return self._finish(FAILED, message)

    def _started_event(self) -> None:
        cfg, p = self.config, self.built
        self.sink.emit(RunStarted(
            run_id=self.paths.root.name, config=cfg.to_dict(), model=cfg.model.name, device=p.device.describe(),
            epochs=cfg.train.epochs, steps_per_epoch=p.steps_per_epoch, num_train=len(p.train_split),
            num_val=len(p.val_split), start_epoch=self.epoch, world_size=self.world_size,
            host=socket.gethostname(), pid=os.getpid(), versions=versions(),
            extra={"lr": p.lr, "workers": resolve_workers(cfg.data.workers), "resumed_from": self.resumed_from or ""},
        ))
        leaks = leakage_warning(Dataset(Path(cfg.data.root), "", {"train": p.train_split, "val": p.val_split}))
        if leaks:  # the last leakage audit of this dataset flagged its validation split
            self.sink.emit(RunWarning(message=leaks, code="leaky_validation"))
        if self.resumed_from:
            self.sink.emit(Resumed(epoch=self.epoch, step=self.global_step, reason="restart",
                                   checkpoint=self.resumed_from))

    def _loop(self) -> str:
        cfg = self.config
        self.next_heartbeat = 0.0
        self.last_checkpoint = time.monotonic()
        while self.epoch < cfg.train.epochs:
            outcome = self._train_epoch()
            if outcome == STOPPED:
                self.checkpoint("stop")
                return STOPPED
            self.epoch += 1
            self.epoch_step = 0
            last = self.epoch == cfg.train.epochs
            validation = validate(self.built, self.dist, self.bad_images) if (self.epoch % cfg.train.val_every == 0 or last) else None
            self.checkpoint("epoch", validation)
            if self.control.stop_requested:
                return STOPPED
        return COMPLETED

    def _train_epoch(self) -> str:
        cfg, p = self.config, self.built
        accum = cfg.optim.accum_steps
        steps_per_epoch = p.steps_per_epoch
        p.loaders.train_sampler.set_epoch(self.epoch, start=self.epoch_step * cfg.train.batch_size)
        p.model.train()
        window = LossWindow(torch.zeros((), device=p.device.device))
        epoch_loss = torch.zeros((), device=p.device.device)
        epoch_steps = epoch_images = 0
        epoch_start = time.monotonic()
        window.started = epoch_start
        min_steps_between = max(1, steps_per_epoch // STEP_EVENTS_PER_EPOCH)
        last_event_step = self.global_step
        lr_used = p.optimizer.param_groups[0]["lr"]
        first_step = self.global_step + 1  # shown at once, so a viewer sees the run move
        for batch in p.loaders.train:
            if batch.bad:
                self.bad_images.note(p.train_split, batch.bad)
            n = batch.images.shape[0]
            if not n and self.dist.enabled:
                empty_ddp_step(p)  # every rank must join each gradient all-reduce
            if n:
                accumulating = (self.epoch_step + 1) % accum != 0 and self.epoch_step + 1 != steps_per_epoch
                loss = forward_backward(p, batch, accumulating, self.dist.enabled, accum, cfg.optim.label_smoothing,
                                        mix_seed=sample_seed(cfg.train.seed, self.epoch, self.epoch_step))
                window.add(loss, n)
                epoch_loss += loss
                epoch_steps += 1
                epoch_images += n
            self.epoch_step += 1
            self.global_step += 1
            boundary = self.epoch_step % accum == 0 or self.epoch_step == steps_per_epoch
            if boundary:
                lr_used = p.optimizer.param_groups[0]["lr"]  # before the scheduler moves it on
                self.num_updates += 1
                optimizer_step(p, cfg.optim.clip_grad, self.num_updates)
            now = time.monotonic()
            if window.steps and (
                self.epoch_step == steps_per_epoch
                or self.global_step == first_step
                or (now - window.started >= STEP_EVENT_INTERVAL_S and self.global_step - last_event_step >= min_steps_between)
            ):
                self._step_event(window, lr_used, now)
                last_event_step = self.global_step
            if boundary and self.control.between_steps(self, self.dist):
                return STOPPED
        duration = time.monotonic() - epoch_start
        self.sink.emit(EpochEnded(
            epoch=self.epoch, train_loss=float(epoch_loss) / max(epoch_steps, 1), duration_s=duration,
            images_per_sec=epoch_images * self.world_size / max(duration, 1e-9),
        ))
        self.bad_images.merge()
        self.bad_images.write()
        return COMPLETED

    def _step_event(self, window: LossWindow, lr_used: float, now: float) -> None:
        """The one host-device sync of a Step event: the window's mean loss."""
        self.sink.emit(Step(
            epoch=self.epoch, step=self.global_step, epoch_step=self.epoch_step,
            steps_per_epoch=self.built.steps_per_epoch, loss=_sig(float(window.loss) / window.steps),
            lr=_sig(float(lr_used)),
            images_per_sec=round(window.images * self.world_size / max(now - window.started, 1e-9), 1),
        ))
        window.reset(now)

    def heartbeat_if_due(self) -> None:
        now = time.monotonic()
        if self.dist.is_main and now >= self.next_heartbeat:
            self._heartbeat(now)

    def recovery_due(self) -> bool:
        """A mid-epoch recovery checkpoint every train.recovery_every_min minutes since the last checkpoint of
        any kind (0: never), so a crash late in a long epoch loses minutes, not the epoch."""
        every = self.config.train.recovery_every_min
        return every > 0 and time.monotonic() - self.last_checkpoint >= every * 60

    def _heartbeat(self, now: float) -> None:
        self.next_heartbeat = now + HEARTBEAT_INTERVAL_S
        device = self.built.device.device
        used, total, util = memory_and_utilization(device)
        self.sink.emit(Heartbeat(device=str(device), memory_used=used, memory_total=total, utilization=util))

    # ------------------------------------------------------------ validation and checkpoints

    def checkpoint(self, reason: str, validation: Validation | None = None, command_id: str = "") -> None:
        """Every rank calls this (the RNG states are gathered); rank 0 writes."""
        self.last_checkpoint = time.monotonic()
        state = self.training_state()
        if not self.dist.is_main:
            return
        p = self.built
        metrics = validation.metrics if validation is not None else None
        weights_model = p.ema.module if p.ema is not None else p.model
        metric_value = metrics.get(self.config.train.best_metric) if metrics else None
        path, is_best = p.checkpoints.save(
            epoch=self.epoch, step=self.global_step, weights=plain_module(weights_model).state_dict(),
            sidecar=run_sidecar(self.config, p, self.paths, metrics), state=state, metric_value=metric_value, reason=reason,
        )
        if validation is not None:
            self._validation_events(validation, is_best)
        extra = {"command": command_id} if command_id else {}
        self.sink.emit(CheckpointSaved(epoch=self.epoch, step=self.global_step, path=str(path.relative_to(self.paths.root)),
                                       reason=reason, is_best=is_best, metric_value=metric_value, extra=extra))

    def _validation_events(self, validation: Validation, is_best: bool) -> None:
        """Validated, then the per-image predictions file, then the event that names it."""
        p, scores = self.built, validation.scores
        self.sink.emit(Validated(epoch=self.epoch, metrics=validation.metrics, num_images=len(scores.index),
                                 best_metric=self.config.train.best_metric, is_best=is_best,
                                 weights="ema" if p.ema is not None else "model"))
        pred_path = self.paths.predictions / f"epoch-{self.epoch:03d}.csv"
        with atomic_path(pred_path) as tmp:
            predictions_frame(p.val_split, scores).to_csv(tmp, index=False)
        self.sink.emit(PredictionsWritten(epoch=self.epoch, path=str(pred_path.relative_to(self.paths.root)),
                                          count=len(scores.index)))

    def _finish(self, status: str, message: str) -> RunFinished:
        self.bad_images.write()
        best = self.parts.checkpoints.best() if self.parts is not None else None
        if status == STOPPED and self.control.stop_reason:
            message = message or f"stopped by {self.control.stop_reason}"
        finished = RunFinished(
            status=status, epochs_completed=self.epoch, best_metric=self.config.train.best_metric,
            best_value=best.metric_value if best else None, best_epoch=best.epoch if best else None,
            duration_s=time.time() - self.started, bad_images=len(self.bad_images), message=message,
        )
        self.sink.emit(finished)
        return finished
