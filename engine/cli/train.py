"""``ffdv train`` and the engine's own process (``run``, ``supervise``): starting, joining and resuming a run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.common import find_run
from engine.cli.common import overrides as cli_overrides
from engine.contract.config import (
    AMP_MODES,
    AUGMENT_PRESETS,
    BAD_IMAGE_POLICIES,
    BEST_METRICS,
    CROP_MODES,
    EVAL_REDUCES,
    OPTIMIZERS,
    SCHEDULES,
    STEMS,
    Config,
)
from engine.contract.errors import FfdvError
from engine.contract.status import RunOutcome
from engine.contract.text import plain_text

# Command-line flags of `ffdv train` and the config settings they set.
TRAIN_FLAGS: list[tuple[str, str, type, str]] = [
    ("--data", "data.root", str, "dataset folder (FFDI layout or train/val image folders)"),
    ("--img-size", "data.img_size", int, "input size in pixels (square)"),
    ("--augment", "data.augment", str, "augmentation preset: none, light or strong"),
    ("--crop", "data.crop", str, "resize (whole image to --img-size) or native (random crops at full resolution; "
     "evaluation scores a grid of crops)"),
    ("--eval-grid", "data.eval_grid", int, "native crops: evaluate eval_grid x eval_grid crops per image (default 3)"),
    ("--eval-reduce", "data.eval_reduce", str, "native crops: an image's score is the mean or max of its crops'"),
    ("--workers", "data.workers", int, "data loader processes (-1: one per core, at most 8)"),
    ("--on-bad-image", "data.on_bad_image", str, "unreadable image: skip (default) or fail"),
    ("--sample-weights", "data.sample_weights", str, "CSV of img_name[,weight] (e.g. from `ffdv hard`): those training "
     "images are drawn weight times per epoch (default 2)"),
    ("--pseudo-fakes", "data.pseudo_fakes", float, "share of real training images turned into self-blended fakes "
     "each epoch, 0 to 1 (0: off)"),
    ("--model", "model.name", str, "any timm model name"),
    ("--pretrained", "model.pretrained", str, "weights file (.safetensors or state dict), or 'hub'"),
    ("--stem", "model.stem", str, "srm (default: fixed SRM high-pass residuals), rgb (the image) or rgb+srm (both)"),
    ("--optimizer", "optim.optimizer", str, "adamw, adam or sgd"),
    ("--lr", "optim.lr", float, "learning rate (default: automatic)"),
    ("--weight-decay", "optim.weight_decay", float, "weight decay"),
    ("--schedule", "optim.schedule", str, "cosine, step or constant (each after a warmup)"),
    ("--warmup-epochs", "optim.warmup_epochs", int, "epochs of linear warmup"),
    ("--clip-grad", "optim.clip_grad", float, "max gradient norm (0: off)"),
    ("--accum-steps", "optim.accum_steps", int, "gradient accumulation steps"),
    ("--label-smoothing", "optim.label_smoothing", float, "label smoothing (0: off)"),
    ("--mixup", "optim.mixup", float, "mixup alpha, e.g. 0.2 (0: off)"),
    ("--cutmix", "optim.cutmix", float, "cutmix alpha, e.g. 1.0 (0: off)"),
    ("--epochs", "train.epochs", int, "number of epochs"),
    ("--batch-size", "train.batch_size", int, "images per batch (per process)"),
    ("--seed", "train.seed", int, "random seed"),
    ("--device", "train.device", str, "auto, cpu, cuda, cuda:N or mps"),
    ("--amp", "train.amp", str, "mixed precision: auto, bf16, fp16 or off"),
    ("--best-metric", "train.best_metric", str, "metric that picks the best checkpoint (default auc)"),
    ("--recovery-every-min", "train.recovery_every_min", float,
     "minutes between mid-epoch recovery checkpoints (default 10; 0: never)"),
    ("--nproc-per-node", "dist.nproc_per_node", int, "processes on this machine, one per GPU (torchrun)"),
    ("--nnodes", "dist.nnodes", int, "machines taking part (the run folder on a shared file system)"),
    ("--node-rank", "dist.node_rank", int, "this machine's number, 0 to nnodes-1 (0 writes the run store)"),
    ("--rdzv-endpoint", "dist.rdzv_endpoint", str, "HOST:PORT of machine 0, with --nnodes > 1"),
    ("--runs", "run.runs", str, "folder that holds the run folders"),
    ("--name", "run.name", str, "run name (a folder name; made unique when taken)"),
]


def _braces(choices) -> str:
    return "{" + ",".join(choices) + "}"


# What to type after each flag: a word for the kind of value, or the choices in braces.
TRAIN_METAVARS = {
    "--data": "DIR", "--img-size": "PX", "--augment": _braces(AUGMENT_PRESETS), "--crop": _braces(CROP_MODES),
    "--eval-grid": "N", "--eval-reduce": _braces(EVAL_REDUCES), "--workers": "N",
    "--on-bad-image": _braces(BAD_IMAGE_POLICIES), "--model": "NAME", "--pretrained": "FILE", "--stem": _braces(STEMS),
    "--optimizer": _braces(OPTIMIZERS), "--lr": "LR", "--weight-decay": "WD", "--schedule": _braces(SCHEDULES),
    "--warmup-epochs": "N", "--clip-grad": "NORM", "--accum-steps": "N", "--label-smoothing": "EPS",
    "--mixup": "ALPHA", "--cutmix": "ALPHA", "--epochs": "N", "--batch-size": "N", "--seed": "N",
    "--device": "DEVICE", "--amp": _braces(AMP_MODES), "--best-metric": _braces(BEST_METRICS),
    "--nproc-per-node": "N", "--nnodes": "N", "--node-rank": "N", "--rdzv-endpoint": "HOST:PORT", "--runs": "DIR",
    "--name": "NAME", "--pseudo-fakes": "SHARE",
}
KIND_METAVARS = {int: "N", float: "X", str: "VALUE"}  # a flag added without its word above


def _with_default(dest: str, help_text: str) -> str:
    """The flag's help and the config's default (the flag itself defaults to "not given": the config file wins)."""
    section, key = dest.split(".")
    value = getattr(getattr(Config(), section), key)
    if "default" in help_text or value in ("", None) or isinstance(value, bool):
        return help_text
    return f"{help_text} (default: {value})"


def add_commands(sub) -> dict:
    train = sub.add_parser("train", help="train a model (shows progress; the run folder keeps everything)",
                           description="Train a detector. Settings come from the defaults, then --config, then the "
                                       "flags; the resolved config is saved in the run folder.")
    train.add_argument("--config", type=Path, metavar="FILE", help="TOML config; flags override it")
    for flag, dest, kind, help_text in TRAIN_FLAGS:
        train.add_argument(flag, dest=dest, type=kind, metavar=TRAIN_METAVARS.get(flag, KIND_METAVARS[kind]),
                           help=_with_default(dest, help_text).replace("%", "%%"))
    train.add_argument("--ema", dest="train.ema", action="store_true", default=None, help="keep an EMA of weights")
    train.add_argument("--compile", dest="train.compile", action="store_true", default=None, help="torch.compile")
    train.add_argument("--sync-bn", dest="dist.sync_bn", action="store_true", default=None,
                       help="SyncBatchNorm over all processes")
    train.add_argument("--resume", metavar="RUN", help="continue a stopped or crashed run (folder or name)")
    train.add_argument("--detach", action="store_true", help="start the run and return at once")
    train.add_argument("--queue", action="store_true",
                       help="queue the run instead of starting it (`ffdv queue run` starts it in its turn)")

    # Internal, so not listed (no help): python -m engine run RUN_DIR is the engine process,
    run = sub.add_parser("run")
    run.add_argument("run_dir", type=Path)
    run.add_argument("--resume", action="store_true")
    supervise = sub.add_parser("supervise")  # and supervise its parent (engine/contract/launch.py)
    supervise.add_argument("run_dir", type=Path)
    supervise.add_argument("--resume", action="store_true")
    supervise.add_argument("--daemon", action="store_true")
    supervise.add_argument("--nproc-per-node", type=int, default=1)
    supervise.add_argument("--nnodes", type=int, default=1)
    supervise.add_argument("--node-rank", type=int, default=0)
    supervise.add_argument("--rdzv-endpoint", default="")
    return {"train": cmd_train, "run": cmd_run, "supervise": cmd_supervise}


def cmd_train(args: argparse.Namespace) -> int:
    from engine.contract.config import load_config, resolve
    from engine.contract.runstart import create_run, nothing_to_resume, queue_run, resume_run
    from engine.contract.runstore import RunPaths
    from engine.data.dataset import training_splits
    from engine.device import check_device
    from engine.models import check_model_name

    overrides = cli_overrides(args)
    if args.resume:
        if args.queue:
            raise FfdvError("--queue makes a new queued run; --resume continues a run now. Pass one of them.")
        launched = resume_run(RunPaths(find_run(args.resume, overrides.get("run.runs", "runs"))), overrides)
        if not launched.from_checkpoint:
            print(nothing_to_resume(launched.paths), file=sys.stderr)
        return _follow_started(launched.paths, launched.pid, args.detach, after_seq=launched.after_seq)
    config = resolve(load_config(args.config, overrides))
    if config.dist.node_rank > 0:
        training_splits(config.data.root)
        check_model_name(config.model.name)
        return _join(config, args.detach)
    check_model_name(config.model.name)
    check_device(config)  # cuda:99, or more processes than GPUs: refused before a run folder exists
    if args.queue:
        paths = queue_run(config)  # checks the label files before the run folder exists
        print(paths.root)
        print(f"queued; `ffdv queue run --runs {config.run.runs}` starts it in its turn", file=sys.stderr)
        return 0
    paths = create_run(config)  # checks the label files before the run folder exists
    return _start(paths, config, detach=args.detach)


def _join(config, detach: bool) -> int:
    """Machine N > 0 of a several-machine run: the run folder is machine 0's, on a shared file system."""
    from engine.contract.runstore import RunPaths, is_run_folder

    if not config.run.name:
        raise FfdvError("--node-rank > 0 joins a run started on machine 0: pass its --name (and the same --runs)")
    root = Path(config.run.runs) / config.run.name
    if not is_run_folder(root):
        raise FfdvError(f"{root}: no run folder here; machine 0 creates it, and --runs must be on a shared file "
                        "system that every machine sees")
    return _start(RunPaths(root, node=config.dist.node_rank), config, detach=detach)


def _start(paths, config, detach: bool) -> int:
    """Launch the engine process (torchrun for several); follow it here unless detached."""
    from engine.contract.launch import launch_run

    return _follow_started(paths, launch_run(paths, dist=config.dist), detach)


def _follow_started(paths, pid: int, detach: bool, after_seq: int = 0) -> int:
    if detach or paths.node > 0:
        print(f"{paths.root}")
        print(f"engine started (pid {pid}); follow it with `ffdv watch {paths.root}`", file=sys.stderr)
        return 0
    from engine.cli.runs import follow

    return follow(paths, from_start=True, interactive_stop=True, after_seq=after_seq)


def _train_here(paths, config, resume: bool, dist_ctx=None) -> int:
    """Train in this process: one rank of the run (rank 0 writes the events and shows the progress)."""
    from rich.text import Text

    from engine.console import ConsoleView
    from engine.contract.runstore import EventWriter
    from engine.distributed import DistContext
    from engine.sink import EventSink
    from engine.train import Trainer

    dist_ctx = dist_ctx or DistContext()
    view = ConsoleView() if dist_ctx.is_main else None
    sink = EventSink(EventWriter(paths.events), [view]) if dist_ctx.is_main else EventSink()
    try:
        finished = Trainer(paths, config, sink, dist_ctx).run(resume=resume)
    finally:
        if view is not None:
            view.close()
        sink.close()
    if view is not None:
        view.console.print(Text.assemble("run folder: ", plain_text(paths.root)))
        if (paths.checkpoints / "best.safetensors").exists():
            view.console.print(Text.assemble("best checkpoint: ", plain_text(paths.checkpoints / "best.safetensors")))
    return 0 if finished.status in (RunOutcome.COMPLETED, RunOutcome.STOPPED) else 1


def cmd_run(args: argparse.Namespace) -> int:
    """The engine process of a prepared run folder (its config.toml); one per folder at a time."""
    import os

    from engine.contract.config import load_config
    from engine.contract.launch import SUPERVISED_ENV, RunLock
    from engine.contract.runstore import RunPaths, write_engine_info
    from engine.distributed import context_from_env

    paths = RunPaths(args.run_dir)
    dist_ctx = context_from_env()  # set by torchrun; one process of one without it
    lock = RunLock(paths)
    if dist_ctx.is_main:
        lock.acquire()
    try:
        config = load_config(paths.config)
        if not os.environ.get(SUPERVISED_ENV) and dist_ctx.is_main:
            write_engine_info(paths)
        return _train_here(paths, config, resume=args.resume, dist_ctx=dist_ctx)
    finally:
        lock.release()


def cmd_supervise(args: argparse.Namespace) -> int:
    from engine.contract.config import DistConfig
    from engine.contract.launch import supervise
    from engine.contract.runstore import RunPaths

    dist = DistConfig(args.nproc_per_node, args.nnodes, args.node_rank, args.rdzv_endpoint)
    return supervise(RunPaths(args.run_dir, node=args.node_rank), resume=args.resume, daemon=args.daemon, dist=dist)
