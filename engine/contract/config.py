"""Run configuration: defaults, a TOML file, command-line overrides, checked in one place.

Torch-free (the app builds the new-run form from it). The resolved configuration is
saved as ``config.toml`` in the run folder, so a run can be repeated with
``ffdv train --config runs/NAME/config.toml``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from engine.contract.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

AUGMENT_PRESETS = ("none", "light", "strong")
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("cosine", "step", "constant")
AMP_MODES = ("auto", "bf16", "fp16", "off")
BAD_IMAGE_POLICIES = ("skip", "fail")
CROP_MODES = ("resize", "native")  # resize: whole image to img_size; native: img_size crops at the image's own resolution
EVAL_REDUCES = ("mean", "max")  # how the crops' probabilities of fake make an image's score
STEMS = ("rgb", "srm", "rgb+srm")  # what the backbone sees: the image, its SRM residuals, or both stacked
# Metrics a run can pick its best checkpoint by; True when higher is better.
BEST_METRICS = {
    "auc": True,
    "ap": True,
    "accuracy": True,
    "f1": True,
    "tpr_at_fpr_1e-3": True,
    "eer": False,
    "loss": False,
}
# Input size and evaluation crop: the config's rules, shared with the checkpoint sidecar's checks.
IMG_SIZE_RANGE = (16, 4096)
EVAL_CROP_RANGE = (0.1, 1.0)
EVAL_GRID_RANGE = (1, 8)
LR_FROM_SCRATCH = 1e-3
LR_FINE_TUNE = 2e-4
MACHINE_WORKERS_PER_CORE = 4  # loader processes mostly wait on files: a few per core, never thousands


@dataclass
class DataConfig:
    root: str = ""
    img_size: int = 128
    augment: str = "light"
    eval_crop: float = 1.0  # 1.0: resize the whole image; below 1: resize to img_size/eval_crop, centre-crop
    crop: str = "resize"  # resize | native: train on random img_size crops at native resolution, score a grid of crops
    eval_grid: int = 3  # crop = native: score each image by eval_grid x eval_grid crops spread over it
    eval_reduce: str = "mean"  # crop = native: an image's score is the mean (or max) of its crops' probabilities
    workers: int = -1  # -1: one per CPU core, at most 8
    on_bad_image: str = "skip"
    max_image_mpix: float = 100.0  # images above this many megapixels (after JPEG draft reduction) are refused; 0: no limit
    sample_weights: str = ""  # a CSV of img_name[,weight]: those training images are drawn weight times per epoch (2)
    pseudo_fakes: float = 0.0  # share of real training images blended with a changed copy of themselves into fakes


@dataclass
class ModelConfig:
    name: str = "resnet10t"
    pretrained: str = ""  # "": random init; a .safetensors / .pth file; "hub": download (needs a network)
    drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    stem: str = "srm"  # srm (fixed SRM high-pass residuals) | rgb (the image as it is) | rgb+srm (both, 6 channels)


@dataclass
class OptimConfig:
    optimizer: str = "adamw"
    lr: float = 0.0  # 0: automatic (1e-3 from scratch, 2e-4 fine-tuning), scaled by batch_size / 32
    weight_decay: float = 0.05
    momentum: float = 0.9
    schedule: str = "cosine"
    warmup_epochs: int = 1
    min_lr: float = 1e-6
    step_epochs: int = 3
    step_gamma: float = 0.1
    clip_grad: float = 0.0  # 0: no clipping; else the max gradient norm
    accum_steps: int = 1
    label_smoothing: float = 0.0
    mixup: float = 0.0  # mixup alpha (timm's Mixup, soft-target loss); 0: off
    cutmix: float = 0.0  # cutmix alpha; 0: off. With both on, each batch takes one of them at random
    mixup_prob: float = 1.0  # share of batches mixed when mixup or cutmix is on


@dataclass
class TrainConfig:
    epochs: int = 8
    batch_size: int = 32
    seed: int = 42
    device: str = "auto"  # auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps
    amp: str = "auto"  # auto: bf16 on CUDA, off elsewhere
    channels_last: str = "auto"  # auto: on CUDA and CPU (not MPS); "on" / "off"
    compile: bool = False
    ema: bool = False
    ema_decay: float = 0.999
    best_metric: str = "auc"
    keep_top_k: int = 3
    val_every: int = 1
    recovery_every_min: float = 10.0  # mid-epoch recovery checkpoint (training state) every N minutes; 0: never


@dataclass
class DistConfig:
    """Several processes through torchrun: one per GPU (or CPU process, with gloo), on one or more machines."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str = ""  # host:port of the first machine, for several machines
    sync_bn: bool = False  # SyncBatchNorm: batch statistics over all processes

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes


@dataclass
class RunConfig:
    runs: str = "runs"
    name: str = ""


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    dist: DistConfig = field(default_factory=DistConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)


SECTIONS: dict[str, type] = get_type_hints(Config)
IGNORED_SECTIONS = ("meta",)  # written into a resolved config for the record, ignored when read back


def _field_types(section: str) -> dict[str, type]:
    return get_type_hints(SECTIONS[section])


def _line_of(text: str, section: str, key: str | None) -> int | None:
    """The line of ``[section]`` (key None) or of ``key = ...`` inside it, for messages."""
    current = ""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", stripped)
        if header:
            current = header.group(1)
            if key is None and current == section:
                return number
            continue
        if key is not None and current == section and re.match(rf"^[\"']?{re.escape(key)}[\"']?\s*=", stripped):
            return number
    return None


def _coerce(section: str, key: str, value: Any, expected: type) -> Any:
    """Check a value's type, allowing ints for floats; raise a message that says what was expected."""
    if isinstance(value, float) and not math.isfinite(value):  # TOML has inf and nan; no setting means them
        raise ConfigError(f"{section}.{key} must be a finite number, got {value!r}")
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    names = {float: "a number", int: "a whole number", str: "a string", bool: "true or false"}
    raise ConfigError(f"{section}.{key} must be {names.get(expected, expected.__name__)}, got {value!r}")


def apply_values(config: Config, values: dict[str, Any], source: str = "", text: str = "") -> Config:
    """Set ``{"section": {"key": value}}`` (a parsed TOML file) or ``{"section.key": value}`` on config."""
    flat: dict[tuple[str, str], Any] = {}
    for name, value in values.items():
        if "." in name:
            section, key = name.split(".", 1)
            flat[(section, key)] = value
            continue
        if name in IGNORED_SECTIONS:
            continue
        if name not in SECTIONS and not isinstance(value, dict):
            owners = [section for section in SECTIONS if name in _field_types(section)]
            line = _line_of(text, "", name) if text else None
            where = f"{source}:{line}: " if source and line else (f"{source}: " if source else "")
            fix = f"put it under [{owners[0]}]" if owners else f"settings belong in a section: {', '.join(SECTIONS)}"
            raise ConfigError(f"{where}setting {name!r} is outside any [section]; {fix}")
        if name not in SECTIONS:
            where = _where(source, text, name, None)
            hint = difflib.get_close_matches(name, SECTIONS, n=1)
            fix = f"did you mean [{hint[0]}]?" if hint else f"sections are {', '.join(f'[{s}]' for s in SECTIONS)}"
            raise ConfigError(f"{where}unknown section [{name}]; {fix}")
        if not isinstance(value, dict):
            raise ConfigError(f"{_where(source, text, name, None)}{name} must be a [section] of settings")
        for key, item in value.items():
            flat[(name, key)] = item
    for (section, key), value in flat.items():
        if section not in SECTIONS:
            raise ConfigError(f"unknown setting {section}.{key}; sections are {', '.join(SECTIONS)}")
        types = _field_types(section)
        if key not in types:
            where = _where(source, text, section, key)
            hint = difflib.get_close_matches(key, types, n=1)
            fix = f"did you mean {hint[0]!r}?" if hint else f"[{section}] takes {', '.join(types)}"
            raise ConfigError(f"{where}unknown setting {key!r} in [{section}]; {fix}")
        try:
            coerced = _coerce(section, key, value, types[key])
        except ConfigError as exc:
            raise ConfigError(f"{_where(source, text, section, key)}{exc}") from None
        setattr(getattr(config, section), key, coerced)
    return config


def _where(source: str, text: str, section: str, key: str | None) -> str:
    if not source:
        return ""
    line = _line_of(text, section, key) if text else None
    return f"{source}:{line}: " if line else f"{source}: "


def load_config(path: Path | str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the TOML file, then overrides (``{"optim.lr": 0.01}``), then checks."""
    config = Config()
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the config file ({exc})") from None
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}. Fix that line (strings need quotes).") from None
        except RecursionError:
            raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply. Fix: a config has "
                              "[sections] of plain settings") from None
        if "meta" in values and "stem" not in values.get("model", {}):
            # a run folder's config.toml saved before stems existed (their default was then rgb): the same model
            values.setdefault("model", {})["stem"] = "rgb"
        apply_values(config, values, str(path), text)
    if overrides:
        apply_values(config, {k: v for k, v in overrides.items() if v is not None})
    check_config(config)
    return config


def _choice(name: str, value: str, choices: tuple[str, ...] | dict[str, bool]) -> None:
    if value not in choices:
        hint = difflib.get_close_matches(value, list(choices), n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError(f"{name} = {value!r} is not one of {', '.join(choices)}{extra}")


def check_config(config: Config) -> None:
    """Reject values that cannot work, before anything starts."""
    d, m, o, t = config.data, config.model, config.optim, config.train
    _choice("data.augment", d.augment, AUGMENT_PRESETS)
    _choice("data.on_bad_image", d.on_bad_image, BAD_IMAGE_POLICIES)
    _choice("data.crop", d.crop, CROP_MODES)
    _choice("data.eval_reduce", d.eval_reduce, EVAL_REDUCES)
    _choice("model.stem", m.stem, STEMS)
    _choice("optim.optimizer", o.optimizer, OPTIMIZERS)
    _choice("optim.schedule", o.schedule, SCHEDULES)
    _choice("train.amp", t.amp, AMP_MODES)
    _choice("train.channels_last", t.channels_last, ("auto", "on", "off"))
    _choice("train.best_metric", t.best_metric, BEST_METRICS)
    checks = [
        (IMG_SIZE_RANGE[0] <= d.img_size <= IMG_SIZE_RANGE[1],
         f"data.img_size must be between {IMG_SIZE_RANGE[0]} and {IMG_SIZE_RANGE[1]} pixels"),
        (EVAL_CROP_RANGE[0] <= d.eval_crop <= EVAL_CROP_RANGE[1],
         f"data.eval_crop must be between {EVAL_CROP_RANGE[0]} and {EVAL_CROP_RANGE[1]} (1.0 = no crop)"),
        (EVAL_GRID_RANGE[0] <= d.eval_grid <= EVAL_GRID_RANGE[1],
         f"data.eval_grid must be from {EVAL_GRID_RANGE[0]} to {EVAL_GRID_RANGE[1]} (crops per side of the grid)"),
        (d.crop == "resize" or d.eval_crop == 1.0,
         "data.eval_crop applies to crop = \"resize\"; with crop = \"native\" evaluation scores a grid of crops "
         "(data.eval_grid). Fix: set eval_crop = 1.0"),
        (d.max_image_mpix >= 0, "data.max_image_mpix must be 0 (no limit) or a positive number of megapixels"),
        (0 <= d.pseudo_fakes <= 1, "data.pseudo_fakes is a share of the real training images, from 0 (off) to 1, "
         "e.g. 0.5"),
        (t.recovery_every_min >= 0, "train.recovery_every_min must be 0 (off) or a positive number of minutes"),
        (d.workers >= -1, "data.workers must be -1 (automatic), 0 (load in the main process) or more"),
        (bool(m.name.strip()), "model.name must name a timm model, e.g. 'resnet10t' or 'efficientnet_b1'"),
        (0 <= m.drop_rate < 1 and 0 <= m.drop_path_rate < 1, "model.drop_rate and drop_path_rate must be in [0, 1)"),
        (o.lr >= 0 and o.lr < 10, "optim.lr must be positive and below 10 (0 picks it automatically)"),
        (o.weight_decay >= 0, "optim.weight_decay must be 0 or more"),
        (o.warmup_epochs >= 0, "optim.warmup_epochs must be 0 or more"),
        (o.min_lr >= 0, "optim.min_lr must be 0 or more"),
        (o.step_epochs >= 1, "optim.step_epochs must be at least 1"),
        (0 < o.step_gamma <= 1, "optim.step_gamma must be in (0, 1]"),
        (o.clip_grad >= 0, "optim.clip_grad must be 0 (off) or a positive norm"),
        (o.accum_steps >= 1, "optim.accum_steps must be at least 1"),
        (0 <= o.label_smoothing < 1, "optim.label_smoothing must be in [0, 1)"),
        (0 <= o.mixup <= 10 and 0 <= o.cutmix <= 10,
         "optim.mixup and optim.cutmix are Beta-distribution alphas from 0 (off) to 10, e.g. 0.2 or 1.0"),
        (0 < o.mixup_prob <= 1, "optim.mixup_prob must be in (0, 1]: the share of batches mixed"),
        (t.epochs >= 1, "train.epochs must be at least 1"),
        (t.batch_size >= 1, "train.batch_size must be at least 1"),
        (0 < t.ema_decay < 1, "train.ema_decay must be between 0 and 1, e.g. 0.999"),
        (t.keep_top_k >= 1, "train.keep_top_k must be at least 1"),
        (t.val_every >= 1, "train.val_every must be at least 1"),
        (bool(re.match(r"^(auto|cpu|mps|cuda(:\d+)?)$", t.device)), "train.device must be auto, cpu, cuda, cuda:N or mps"),
        (config.dist.nproc_per_node >= 1, "dist.nproc_per_node must be at least 1 (one process per GPU)"),
        (config.dist.nnodes >= 1, "dist.nnodes must be at least 1"),
        (0 <= config.dist.node_rank < config.dist.nnodes, "dist.node_rank must be between 0 and nnodes - 1"),
        (config.dist.nnodes == 1 or bool(re.match(r"^[^:\s]+:\d+$", config.dist.rdzv_endpoint)),
         "dist.rdzv_endpoint must be HOST:PORT of the first machine when nnodes > 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    check_derived(config)
    if config.run.name:
        from engine.contract.runstore import check_run_name

        try:
            check_run_name(config.run.name)
        except ValueError as exc:
            raise ConfigError(f"run.name: {exc}") from None


def machine_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_derived(config: Config) -> None:
    """Values computed from others, and what the machine can hold, checked with the config: a run folder is never
    made for a run that cannot start (nor a --resume advised that fails the same way)."""
    cores = machine_cores()
    limit = max(MACHINE_WORKERS_PER_CORE * cores, 8)
    if config.data.workers > limit:
        raise ConfigError(f"data.workers = {config.data.workers} is more than this machine can run ({cores} CPU cores: "
                          f"at most {limit} loader processes). Fix: set data.workers = -1 (one per core, at most 8)")
    if config.dist.nproc_per_node > cores:
        raise ConfigError(f"dist.nproc_per_node = {config.dist.nproc_per_node} is more processes than this machine has "
                          f"CPU cores ({cores}); one process per GPU is the rule. Fix: set it to the number of GPUs")
    lr = resolve_lr(config)
    if not lr < 10:
        raise ConfigError(f"the automatic learning rate would be {lr:g} (optim.lr = 0: {LR_FROM_SCRATCH:g} from scratch, "
                          f"{LR_FINE_TUNE:g} fine-tuning, times the effective batch {effective_batch_size(config)} / 32), "
                          "and optim.lr must be below 10. Fix: a smaller train.batch_size, or set optim.lr")


def effective_batch_size(config: Config) -> int:
    """Images per optimiser step: per-process batch x accumulation steps x processes."""
    return config.train.batch_size * config.optim.accum_steps * config.dist.world_size


def resolve_lr(config: Config) -> float:
    """The learning rate to use: the configured one, or the automatic one scaled to the effective batch."""
    if config.optim.lr > 0:
        return config.optim.lr
    base = LR_FINE_TUNE if config.model.pretrained else LR_FROM_SCRATCH
    return base * effective_batch_size(config) / 32


def resolve(config: Config) -> Config:
    """Fix what was left automatic or relative, for the record: the learning rate, absolute paths
    (a run folder is read later from anywhere: the app, another terminal, a resume)."""
    config.optim.lr = resolve_lr(config)
    if config.data.root:
        config.data.root = str(Path(config.data.root).expanduser().resolve())
    if config.model.pretrained and config.model.pretrained != "hub":
        config.model.pretrained = str(Path(config.model.pretrained).expanduser().resolve())
    return config


def resolve_workers(workers: int) -> int:
    """Data loader processes from ``data.workers`` or ``--workers``: -1 is one per usable core, at most 8."""
    if workers >= 0:
        return workers
    return max(1, min(8, machine_cores()))


def versions() -> dict[str, str]:
    """Versions of what a run depends on, read without importing it (the app calls this too)."""
    import platform
    from importlib import metadata

    found = {"python": platform.python_version()}
    for name, dist in (("ffdv", "ffdv-tui"), ("torch", "torch"), ("torchvision", "torchvision"), ("timm", "timm"),
                       ("torchmetrics", "torchmetrics")):
        try:
            found[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def save_config(paths, config: Config) -> None:
    """The resolved configuration in the run folder, so the run can be repeated (``ffdv train --config``)."""
    from engine.contract.runstore import atomic_write_text

    meta = {"versions": versions(), "effective_batch_size": effective_batch_size(config),
            "world_size": config.dist.world_size}
    atomic_write_text(paths.config, to_toml(config, meta=meta))


def to_toml(config: Config, meta: dict[str, Any] | None = None) -> str:
    import tomli_w

    data: dict[str, Any] = config.to_dict()
    if meta:
        data["meta"] = meta
    return tomli_w.dumps(data)
