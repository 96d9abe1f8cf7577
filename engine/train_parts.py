"""Everything a training run is made of, built in one place: model, loaders, optimiser, scheduler, EMA, checkpoints.

``build_parts`` is the whole set-up of a run (the order matters: seed, then the model,
then DDP, then loaders sized for this rank); ``engine/train.py`` only runs the loop
over what it returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import timm
import timm.optim
import timm.scheduler
import torch
from timm.data import Mixup
from timm.utils import ModelEmaV3
from torch.nn.parallel import DistributedDataParallel

from engine.checkpoint_store import CheckpointManager
from engine.contract.config import BEST_METRICS, Config, resolve_lr, resolve_workers
from engine.contract.errors import ConfigError, DataError
from engine.contract.runstore import RunPaths
from engine.data.dataset import Split, training_splits
from engine.data.sample_weights import read_sample_weights
from engine.data.self_blend import check_pseudo_fakes
from engine.device import DeviceSetup, setup_device
from engine.distributed import DistContext, init_process_group
from engine.loader import DeviceNormalizer, EpochSampler, ImageDataset, ImageSpec, eval_transform, make_loader, train_transform
from engine.mixing import make_mixup
from engine.models import create_model


@dataclass
class Loaders:
    train_set: ImageDataset
    train_sampler: EpochSampler
    train: torch.utils.data.DataLoader
    val_sampler: EpochSampler
    val: torch.utils.data.DataLoader
    normalizer: DeviceNormalizer
    steps_per_epoch: int


@dataclass
class TrainingParts:
    """What one rank trains with; built once by ``build_parts``."""

    train_split: Split
    val_split: Split
    device: DeviceSetup
    model: torch.nn.Module  # wrapped in DDP when several processes train
    forward_model: torch.nn.Module  # the model, compiled when train.compile is on
    spec: ImageSpec
    lr: float
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    ema: ModelEmaV3 | None
    loaders: Loaders
    scheduler: Any  # a timm scheduler, stepped per optimiser update
    updates_per_epoch: int
    checkpoints: CheckpointManager
    notes: list[str]  # what the pretrained weights did not cover, for warnings
    mixup: Mixup | None = None  # optim.mixup / optim.cutmix: timm's Mixup, training batches only

    @property
    def steps_per_epoch(self) -> int:
        return self.loaders.steps_per_epoch


def build_parts(config: Config, paths: RunPaths, dist: DistContext) -> TrainingParts:
    cfg = config
    train_split, val_split = training_splits(cfg.data.root)
    device = setup_device(cfg)
    init_process_group(dist, device.device)
    torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank
    if device.is_cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model, spec, notes = create_model(cfg)
    model.to(device.device)
    if device.channels_last:
        model.to(memory_format=torch.channels_last)
    lr = resolve_lr(cfg)
    optimizer = timm.optim.create_optimizer_v2(model, opt=cfg.optim.optimizer, lr=lr, weight_decay=cfg.optim.weight_decay,
                                               momentum=cfg.optim.momentum)
    scaler = torch.amp.GradScaler(device.device.type, enabled=device.amp_dtype == torch.float16)
    ema = ModelEmaV3(model, decay=cfg.train.ema_decay) if cfg.train.ema else None
    if cfg.dist.sync_bn and not device.is_cuda:
        raise ConfigError("dist.sync_bn needs CUDA GPUs (PyTorch's SyncBatchNorm is GPU-only). "
                          "Fix: drop --sync-bn; on the CPU each process normalises its own batch.")
    if dist.enabled:
        if cfg.dist.sync_bn:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = DistributedDataParallel(model, device_ids=[device.device.index] if device.is_cuda else None)
    forward_model = torch.compile(model) if cfg.train.compile else model
    loaders = build_loaders(cfg, train_split, val_split, spec, device, dist)
    scheduler, updates_per_epoch = build_scheduler(cfg, optimizer, lr, loaders.steps_per_epoch)
    metric = cfg.train.best_metric
    checkpoints = CheckpointManager(paths.checkpoints, metric, BEST_METRICS[metric], cfg.train.keep_top_k)
    return TrainingParts(train_split, val_split, device, model, forward_model, spec, lr, optimizer, scaler, ema, loaders,
                         scheduler, updates_per_epoch, checkpoints, notes, make_mixup(cfg))


def build_loaders(cfg: Config, train_split: Split, val_split: Split, spec: ImageSpec, device: DeviceSetup,
                  dist: DistContext) -> Loaders:
    workers = resolve_workers(cfg.data.workers)
    pin = device.is_cuda
    nice = device.loader_niceness
    transform, decode = train_transform(spec, cfg.data.augment)
    check_pseudo_fakes(cfg.data.pseudo_fakes, train_split)
    train_set = ImageDataset(train_split, transform, decode, cfg.train.seed, int(cfg.data.max_image_mpix * 1e6),
                             pseudo_fakes=cfg.data.pseudo_fakes)
    repeats = read_sample_weights(cfg.data.sample_weights, train_split) if cfg.data.sample_weights else None
    train_sampler = EpochSampler(len(train_set), True, cfg.train.seed, dist.world_size, dist.rank, repeats)
    drop_last = len(train_sampler) > cfg.train.batch_size
    train = make_loader(train_set, train_sampler, cfg.train.batch_size, workers, pin, drop_last, nice)
    transform, decode = eval_transform(spec)
    val_set = ImageDataset(val_split, transform, decode, cfg.train.seed, int(cfg.data.max_image_mpix * 1e6))
    val_sampler = EpochSampler(len(val_set), False, cfg.train.seed, dist.world_size, dist.rank)
    val = make_loader(val_set, val_sampler, cfg.train.batch_size, workers, pin, worker_niceness=nice)
    normalizer = DeviceNormalizer(spec, device.device, device.channels_last)
    if len(train) == 0:
        raise DataError(f"{train_split.folder}: no training batch can be formed (the split is empty).")
    return Loaders(train_set, train_sampler, train, val_sampler, val, normalizer, len(train))


def build_scheduler(cfg: Config, optimizer: torch.optim.Optimizer, lr: float, steps_per_epoch: int) -> tuple[Any, int]:
    """timm's scheduler, stepped per optimiser update (warmup and decay in updates, not epochs)."""
    o, epochs = cfg.optim, cfg.train.epochs
    updates_per_epoch = math.ceil(steps_per_epoch / o.accum_steps)
    warmup = min(o.warmup_epochs, epochs - 1)
    if o.schedule == "cosine":
        kwargs: dict[str, Any] = {"sched": "cosine", "min_lr": o.min_lr}
    elif o.schedule == "step":
        kwargs = {"sched": "step", "decay_epochs": o.step_epochs, "decay_rate": o.step_gamma}
    else:  # constant after the warmup
        kwargs = {"sched": "step", "decay_epochs": 10**9, "decay_rate": 1.0}
    scheduler, _ = timm.scheduler.create_scheduler_v2(
        optimizer, num_epochs=epochs, warmup_epochs=warmup, warmup_lr=min(1e-5, lr / 10), step_on_epochs=False,
        updates_per_epoch=updates_per_epoch, **kwargs,
    )
    scheduler.step_update(0)
    return scheduler, updates_per_epoch
