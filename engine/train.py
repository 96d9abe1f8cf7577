"""The training run: epochs of steps, a validation after each, checkpoints, events all along.

The hot loop follows the engine's performance rules (ARCHITECTURE.md): uint8 batches normalised on the
device, no host-device sync per step (losses stay on the device until a Step event
is due, a few per second at most and about 250 per epoch), commands and signals
read between steps with one ``stat``. Everything a viewer sees arrives as an event
after the files it mentions exist.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

import timm
import timm.optim
import timm.scheduler
import torch
import torch.nn.functional as F
from timm.utils import ModelEmaV3
from torch.nn.parallel import DistributedDataParallel

from engine.checkpoint_store import CheckpointManager, load_training_state, newest_resumable
from engine.contract.config import BEST_METRICS, Config, resolve_lr, resolve_workers, versions
from engine.contract.dataset import Dataset, Split, training_splits
from engine.contract.errors import ConfigError, DataError, FfdvError, storage_error
from engine.contract.leakage import leakage_warning
from engine.contract.protocol import (
    COMPLETED,
    FAILED,
    STOPPED,
    CheckpointSaved,
    EpochEnded,
    Heartbeat,
    Paused,
    PredictionsWritten,
    Resumed,
    RunError,
    RunFinished,
    RunStarted,
    RunWarning,
    Step,
    Validated,
    clean_number,
)
from engine.contract.runstore import RunPaths, atomic_path, atomic_write_text
from engine.contract.sidecar import Sidecar
from engine.contract.status import RunStatus
from engine.control import Control
from engine.device import DeviceSetup, memory_and_utilization, setup_device
from engine.distributed import (
    DistContext,
    agree,
    destroy_process_group,
    gather_objects,
    init_process_group,
    record_rank_error,
)
from engine.inference import Scores, predictions_frame, score_batches
from engine.loader import DeviceNormalizer, EpochSampler, ImageDataset, eval_transform, make_loader, train_transform
from engine.metrics import detection_metrics
from engine.models import create_model, plain_module
from engine.sink import EventSink

STEP_EVENT_INTERVAL_S = 1.0
STEP_EVENTS_PER_EPOCH = 250
HEARTBEAT_INTERVAL_S = 10.0
PAUSE_POLL_S = 0.2
MAX_BAD_IMAGE_WARNINGS = 20


def _sig(value: float, digits: int = 6) -> float:
    """Six significant digits: what a curve can show, and a third of the bytes of a full float in the log."""
    return float(f"{value:.{digits}g}")


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
        self.bad_images: dict[str, str] = {}
        self.started = time.time()
        self.epoch = 0  # epochs completed
        self.epoch_step = 0  # steps done in the current epoch
        self.global_step = 0
        self.num_updates = 0

    # ------------------------------------------------------------ setup

    def setup(self, resume: bool) -> None:
        cfg = self.config
        self.train_split, self.val_split = training_splits(cfg.data.root)
        self.device: DeviceSetup = setup_device(cfg)
        init_process_group(self.dist, self.device.device)
        torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank
        if self.device.is_cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.model, self.spec, notes = create_model(cfg)
        for note in notes:
            self.sink.emit(RunWarning(message=f"pretrained weights: {note}", code="pretrained_partial"))
        self.model.to(self.device.device)
        if self.device.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.lr = resolve_lr(cfg)
        self.optimizer = timm.optim.create_optimizer_v2(
            self.model, opt=cfg.optim.optimizer, lr=self.lr, weight_decay=cfg.optim.weight_decay,
            momentum=cfg.optim.momentum,
        )
        self.scaler = torch.amp.GradScaler(self.device.device.type, enabled=self.device.amp_dtype == torch.float16)
        self.ema = ModelEmaV3(self.model, decay=cfg.train.ema_decay) if cfg.train.ema else None
        if cfg.dist.sync_bn and not self.device.is_cuda:
            raise ConfigError("dist.sync_bn needs CUDA GPUs (PyTorch's SyncBatchNorm is GPU-only). "
                              "Fix: drop --sync-bn; on the CPU each process normalises its own batch.")
        if self.dist.enabled:
            if cfg.dist.sync_bn:
                self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            device_ids = [self.device.device.index] if self.device.is_cuda else None
            self.model = DistributedDataParallel(self.model, device_ids=device_ids)
        self.forward_model = torch.compile(self.model) if cfg.train.compile else self.model
        self._build_loaders()
        self._build_scheduler()
        metric = cfg.train.best_metric
        self.checkpoints = CheckpointManager(self.paths.checkpoints, metric, BEST_METRICS[metric], cfg.train.keep_top_k)
        if self.dist.is_main:
            for note in self.checkpoints.recover():
                self.sink.emit(RunWarning(message=note, code="checkpoint_recovered"))
        self.resumed_from = self._restore() if resume else None

    def _build_loaders(self) -> None:
        cfg = self.config
        workers = resolve_workers(cfg)
        pin = self.device.is_cuda
        transform, decode = train_transform(self.spec, cfg.data.augment)
        max_pixels = int(cfg.data.max_image_mpix * 1e6)
        self.train_set = ImageDataset(self.train_split, transform, decode, cfg.train.seed, max_pixels)
        self.train_sampler = EpochSampler(len(self.train_set), True, cfg.train.seed, self.world_size, self.rank)
        drop_last = len(self.train_sampler) > cfg.train.batch_size
        nice = self.device.loader_niceness
        self.train_loader = make_loader(self.train_set, self.train_sampler, cfg.train.batch_size, workers, pin, drop_last,
                                        nice)
        transform, decode = eval_transform(self.spec)
        self.val_set = ImageDataset(self.val_split, transform, decode, cfg.train.seed)
        self.val_sampler = EpochSampler(len(self.val_set), False, cfg.train.seed, self.world_size, self.rank)
        self.val_loader = make_loader(self.val_set, self.val_sampler, cfg.train.batch_size, workers, pin,
                                      worker_niceness=nice)
        self.normalizer = DeviceNormalizer(self.spec, self.device.device, self.device.channels_last)
        self.steps_per_epoch = len(self.train_loader)
        if self.steps_per_epoch == 0:
            raise DataError(f"{self.train_split.folder}: no training batch can be formed (the split is empty).")

    def _build_scheduler(self) -> None:
        o, epochs = self.config.optim, self.config.train.epochs
        self.updates_per_epoch = math.ceil(self.steps_per_epoch / o.accum_steps)
        warmup = min(o.warmup_epochs, epochs - 1)
        if o.schedule == "cosine":
            kwargs: dict[str, Any] = {"sched": "cosine", "min_lr": o.min_lr}
        elif o.schedule == "step":
            kwargs = {"sched": "step", "decay_epochs": o.step_epochs, "decay_rate": o.step_gamma}
        else:  # constant after the warmup
            kwargs = {"sched": "step", "decay_epochs": 10**9, "decay_rate": 1.0}
        self.scheduler, _ = timm.scheduler.create_scheduler_v2(
            self.optimizer, num_epochs=epochs, warmup_epochs=warmup, warmup_lr=min(1e-5, self.lr / 10),
            step_on_epochs=False, updates_per_epoch=self.updates_per_epoch, **kwargs,
        )
        self.scheduler.step_update(self.num_updates)

    # ------------------------------------------------------------ state

    def training_state(self) -> dict[str, Any]:
        """The state to resume from; RNG states of every rank (a collective: all ranks call this)."""
        rng = gather_objects(self.dist, (torch.get_rng_state(),
                                         torch.cuda.get_rng_state_all() if self.device.is_cuda else []))
        return {
            "format": 1,
            "model": plain_module(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
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
        if found is None:
            raise FfdvError(f"{self.paths.root}: no checkpoint with training state to resume from")
        state_path, _record = found
        state = load_training_state(state_path)
        plain_module(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.epoch, self.epoch_step = int(state["epoch"]), int(state["epoch_step"])
        self.global_step, self.num_updates = int(state["global_step"]), int(state["num_updates"])
        rng_cpu, rng_cuda = state["rng_cpu"], state.get("rng_cuda") or []
        if isinstance(rng_cpu, list):  # one state per rank; a run resumed with fewer/more ranks reuses rank 0's
            index = self.rank if self.rank < len(rng_cpu) else 0
            rng_cpu, rng_cuda = rng_cpu[index], (rng_cuda[index] if index < len(rng_cuda) else [])
        torch.set_rng_state(rng_cpu)
        if self.device.is_cuda and rng_cuda:
            torch.cuda.set_rng_state_all(rng_cuda)
        self.scheduler.step_update(self.num_updates)
        self._load_bad_images()
        return state_path.name.removesuffix(".state.pt")

    # ------------------------------------------------------------ bad images

    def _load_bad_images(self) -> None:
        if self.paths.bad_images.is_file():
            for line in self.paths.bad_images.read_text(encoding="utf-8").splitlines():
                name, _, reason = line.partition("\t")
                if name:
                    self.bad_images[name] = reason

    def _note_bad(self, split: Split, bad: list[tuple[int, str]] | dict[int, str]) -> None:
        items = bad.items() if isinstance(bad, dict) else bad
        for index, reason in items:
            name = f"{split.folder.name}/{split.names[index]}"
            if self.config.data.on_bad_image == "fail":
                raise DataError(
                    f"{split.folder / split.names[index]}: cannot decode the image ({reason}). The run stops because "
                    "data.on_bad_image = \"fail\"; fix or remove the file, or set it to \"skip\"."
                )
            if name in self.bad_images:
                continue
            self.bad_images[name] = reason
            if len(self.bad_images) <= MAX_BAD_IMAGE_WARNINGS:
                self.sink.emit(RunWarning(message=f"skipped unreadable image {name}: {reason}", code="bad_image",
                                          detail={"name": name, "reason": reason}))
            elif len(self.bad_images) == MAX_BAD_IMAGE_WARNINGS + 1:
                self.sink.emit(RunWarning(message=f"more unreadable images; all are listed in {self.paths.bad_images}",
                                          code="bad_image"))

    def _merge_bad_images(self) -> None:
        """Unreadable images seen by any rank (a collective: every rank calls it at the same point)."""
        for found in gather_objects(self.dist, self.bad_images):
            for name, reason in found.items():
                self.bad_images.setdefault(name, reason)

    def _write_bad_images(self) -> None:
        if self.bad_images and self.dist.is_main:
            text = "".join(f"{name}\t{reason}\n" for name, reason in sorted(self.bad_images.items()))
            atomic_write_text(self.paths.bad_images, text)

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
        cfg = self.config
        self.sink.emit(RunStarted(
            run_id=self.paths.root.name, config=cfg.to_dict(), model=cfg.model.name, device=self.device.describe(),
            epochs=cfg.train.epochs, steps_per_epoch=self.steps_per_epoch, num_train=len(self.train_split),
            num_val=len(self.val_split), start_epoch=self.epoch, world_size=self.world_size,
            host=socket.gethostname(), pid=os.getpid(), versions=versions(),
            extra={"lr": self.lr, "workers": resolve_workers(cfg), "resumed_from": self.resumed_from or ""},
        ))
        leaks = leakage_warning(Dataset(Path(cfg.data.root), "", {"train": self.train_split, "val": self.val_split}))
        if leaks:  # the last leakage audit of this dataset flagged its validation split
            self.sink.emit(RunWarning(message=leaks, code="leaky_validation"))
        if self.resumed_from:
            self.sink.emit(Resumed(epoch=self.epoch, step=self.global_step, reason="restart",
                                   checkpoint=self.resumed_from))

    def _loop(self) -> str:
        cfg = self.config
        self._next_heartbeat = 0.0
        while self.epoch < cfg.train.epochs:
            outcome = self._train_epoch()
            if outcome == STOPPED:
                self._checkpoint("stop")
                return STOPPED
            self.epoch += 1
            self.epoch_step = 0
            last = self.epoch == cfg.train.epochs
            metrics = self._validate() if (self.epoch % cfg.train.val_every == 0 or last) else None
            self._checkpoint("epoch", metrics)
            if self.control.stop_requested:
                return STOPPED
        return COMPLETED

    def _train_epoch(self) -> str:
        cfg, device = self.config, self.device
        accum = cfg.optim.accum_steps
        self.train_sampler.set_epoch(self.epoch, start=self.epoch_step * cfg.train.batch_size)
        self.model.train()
        criterion_smoothing = cfg.optim.label_smoothing
        loss_sum = torch.zeros((), device=device.device)
        window_steps = window_images = 0
        epoch_loss = torch.zeros((), device=device.device)
        epoch_steps = epoch_images = 0
        epoch_start = last_event = time.monotonic()
        min_steps_between = max(1, self.steps_per_epoch // STEP_EVENTS_PER_EPOCH)
        last_event_step = self.global_step
        lr_used = self.optimizer.param_groups[0]["lr"]
        first_step = self.global_step + 1  # shown at once, so a viewer sees the run move
        for batch in self.train_loader:
            if batch.bad:
                self._note_bad(self.train_split, batch.bad)
            n = batch.images.shape[0]
            if not n and self.dist.enabled:
                self._empty_ddp_step()  # every rank must join each gradient all-reduce
            if n:
                x = self.normalizer(batch.images)
                y = batch.targets.to(device.device, non_blocking=True)
                accumulating = (self.epoch_step + 1) % accum != 0 and self.epoch_step + 1 != self.steps_per_epoch
                # DDP all-reduces gradients only on the step that applies them
                with self.model.no_sync() if self.dist.enabled and accumulating else contextlib.nullcontext():
                    with device.autocast():
                        logits = self.forward_model(x)
                        loss = F.cross_entropy(logits.float(), y, label_smoothing=criterion_smoothing)
                    self.scaler.scale(loss / accum).backward()
                loss_sum += loss.detach()
                epoch_loss += loss.detach()
                window_steps += 1
                epoch_steps += 1
                window_images += n
                epoch_images += n
            self.epoch_step += 1
            self.global_step += 1
            boundary = self.epoch_step % accum == 0 or self.epoch_step == self.steps_per_epoch
            if boundary:
                lr_used = self.optimizer.param_groups[0]["lr"]  # before the scheduler moves it on
                self._optimizer_step()
            now = time.monotonic()
            if window_steps and (
                self.epoch_step == self.steps_per_epoch
                or self.global_step == first_step
                or (now - last_event >= STEP_EVENT_INTERVAL_S and self.global_step - last_event_step >= min_steps_between)
            ):
                self.sink.emit(Step(
                    epoch=self.epoch, step=self.global_step, epoch_step=self.epoch_step,
                    steps_per_epoch=self.steps_per_epoch, loss=_sig(float(loss_sum) / window_steps),
                    lr=_sig(float(lr_used)),
                    images_per_sec=round(window_images * self.world_size / max(now - last_event, 1e-9), 1),
                ))
                loss_sum.zero_()
                window_steps = window_images = 0
                last_event, last_event_step = now, self.global_step
            if boundary and self._between_steps() == STOPPED:
                return STOPPED
        duration = time.monotonic() - epoch_start
        self.sink.emit(EpochEnded(
            epoch=self.epoch, train_loss=float(epoch_loss) / max(epoch_steps, 1), duration_s=duration,
            images_per_sec=epoch_images * self.world_size / max(duration, 1e-9),
        ))
        self._merge_bad_images()
        self._write_bad_images()
        return COMPLETED

    def _empty_ddp_step(self) -> None:
        """This rank's batch had only unreadable images: contribute zero gradients to the all-reduce."""
        size = self.spec.img_size
        x = torch.zeros(1, 3, size, size, device=self.device.device)
        if self.device.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self.device.autocast():
            (self.forward_model(x).float().sum() * 0.0).backward()

    def _optimizer_step(self) -> None:
        clip = self.config.optim.clip_grad
        if clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.num_updates += 1
        self.scheduler.step_update(self.num_updates)
        if self.ema is not None:
            self.ema.update(plain_module(self.model), step=self.num_updates)

    def _between_steps(self) -> str | None:
        """Commands, signals and heartbeats; blocks here while paused. Every rank decides the same."""
        now = time.monotonic()
        if self.dist.is_main and now >= self._next_heartbeat:
            self._heartbeat(now)
        paused = False
        while True:
            want_pause, checkpoint_ids, answer = paused, [], {}
            for command in self.control.poll():  # rank 0 reads commands; the others learn from `agree`
                if command.name == "checkpoint_now":
                    checkpoint_ids.append(command.id)
                elif command.name in ("pause", "resume") and want_pause == (command.name == "pause"):
                    state = RunStatus.PAUSED if want_pause else RunStatus.RUNNING
                    self.sink.emit(RunWarning(message=f"{command.name} ignored: the run is already {state}",
                                              code="command_ignored", extra={"command": command.id}))
                elif command.name in ("pause", "resume"):
                    want_pause, answer = command.name == "pause", {"command": command.id}
            # Stop: any rank (each gets the signal). Pause and checkpoint: rank 0's word (it reads the commands).
            main = self.dist.is_main
            stop, pause, checkpoint = agree(self.dist, [int(self.control.stop_requested), int(want_pause and main),
                                                        int(bool(checkpoint_ids) and main)])
            if checkpoint:
                self._checkpoint("command", command_id=",".join(checkpoint_ids))
            if bool(pause) != paused:
                paused = bool(pause)
                event = Paused if paused else Resumed
                self.sink.emit(event(epoch=self.epoch, step=self.global_step, extra=answer))
            if stop:
                return STOPPED
            if not paused:
                return None
            time.sleep(PAUSE_POLL_S)
            if self.dist.is_main and time.monotonic() >= self._next_heartbeat:
                self._heartbeat(time.monotonic())

    def _heartbeat(self, now: float) -> None:
        self._next_heartbeat = now + HEARTBEAT_INTERVAL_S
        used, total, util = memory_and_utilization(self.device.device)
        self.sink.emit(Heartbeat(device=str(self.device.device), memory_used=used, memory_total=total, utilization=util))

    # ------------------------------------------------------------ validation and checkpoints

    def _eval_model(self) -> torch.nn.Module:
        """EMA weights when kept; under DDP the bare module (evaluation needs no collectives)."""
        if self.ema is not None:
            return self.ema.module
        return plain_module(self.model) if self.dist.enabled else self.forward_model

    def _validate(self) -> dict[str, Any]:
        self.val_sampler.set_epoch(0)
        scores: Scores = score_batches(self._eval_model(), self.val_loader, self.normalizer, self.device)
        for bad in gather_objects(self.dist, scores.bad):
            scores.bad.update(bad)
        if scores.bad:
            self._note_bad(self.val_split, scores.bad)
        metrics = detection_metrics(torch.from_numpy(scores.score), torch.from_numpy(scores.target))
        metrics["loss"] = scores.mean_loss()
        metrics = {k: (clean_number(v) if isinstance(v, float) else v) for k, v in metrics.items()}
        self._last_scores = scores
        return metrics

    def _sidecar(self, metrics: dict[str, Any] | None) -> Sidecar:
        return Sidecar(
            model=self.config.model.name, img_size=self.spec.img_size, mean=tuple(self.spec.mean),
            std=tuple(self.spec.std), eval_crop=self.spec.eval_crop, weights="ema" if self.ema is not None else "model",
            metrics=metrics, run=self.paths.root.name, config=self.config.to_dict(), versions=versions(),
        )

    def _checkpoint(self, reason: str, metrics: dict[str, Any] | None = None, command_id: str = "") -> None:
        """Every rank calls this (the RNG states are gathered); rank 0 writes."""
        state = self.training_state()
        if not self.dist.is_main:
            return
        weights_model = self.ema.module if self.ema is not None else self.model
        metric_value = metrics.get(self.config.train.best_metric) if metrics else None
        path, is_best = self.checkpoints.save(
            epoch=self.epoch, step=self.global_step, weights=plain_module(weights_model).state_dict(),
            sidecar=self._sidecar(metrics), state=state, metric_value=metric_value, reason=reason,
        )
        if metrics is not None:
            scores = self._last_scores
            self.sink.emit(Validated(epoch=self.epoch, metrics=metrics, num_images=len(scores.index),
                                     best_metric=self.config.train.best_metric, is_best=is_best,
                                     weights="ema" if self.ema is not None else "model"))
            pred_path = self.paths.predictions / f"epoch-{self.epoch:03d}.csv"
            with atomic_path(pred_path) as tmp:
                predictions_frame(self.val_split, scores).to_csv(tmp, index=False)
            self.sink.emit(PredictionsWritten(epoch=self.epoch, path=str(pred_path.relative_to(self.paths.root)),
                                              count=len(scores.index)))
        extra = {"command": command_id} if command_id else {}
        self.sink.emit(CheckpointSaved(epoch=self.epoch, step=self.global_step, path=str(path.relative_to(self.paths.root)),
                                       reason=reason, is_best=is_best, metric_value=metric_value, extra=extra))

    def _finish(self, status: str, message: str) -> RunFinished:
        self._write_bad_images()
        best = getattr(self, "checkpoints", None) and self.checkpoints.best()
        if status == STOPPED and self.control.stop_reason:
            message = message or f"stopped by {self.control.stop_reason}"
        finished = RunFinished(
            status=status, epochs_completed=self.epoch, best_metric=self.config.train.best_metric,
            best_value=best.metric_value if best else None, best_epoch=best.epoch if best else None,
            duration_s=time.time() - self.started, bad_images=len(self.bad_images), message=message,
        )
        self.sink.emit(finished)
        return finished
