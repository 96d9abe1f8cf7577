"""``ffdv``: the engine without the app (train, evaluate, predict, models).

Every input problem a user can fix ends the command with a message naming the
file, the line and the fix, and exit status 2; a failed run exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from engine import __version__
from engine.errors import FfdvError

# Command-line flags of `ffdv train` and the config settings they set.
TRAIN_FLAGS: list[tuple[str, str, type, str]] = [
    ("--data", "data.root", str, "dataset folder (FFDI layout or train/val image folders)"),
    ("--img-size", "data.img_size", int, "input size in pixels (square)"),
    ("--augment", "data.augment", str, "augmentation preset: none, light or strong"),
    ("--workers", "data.workers", int, "data loader processes (-1: one per core, at most 8)"),
    ("--on-bad-image", "data.on_bad_image", str, "unreadable image: skip (default) or fail"),
    ("--model", "model.name", str, "any timm model name"),
    ("--pretrained", "model.pretrained", str, "weights file (.safetensors or state dict), or 'hub'"),
    ("--optimizer", "optim.optimizer", str, "adamw, adam or sgd"),
    ("--lr", "optim.lr", float, "learning rate (default: automatic)"),
    ("--weight-decay", "optim.weight_decay", float, "weight decay"),
    ("--schedule", "optim.schedule", str, "cosine, step or constant (each after a warmup)"),
    ("--warmup-epochs", "optim.warmup_epochs", int, "epochs of linear warmup"),
    ("--clip-grad", "optim.clip_grad", float, "max gradient norm (0: off)"),
    ("--accum-steps", "optim.accum_steps", int, "gradient accumulation steps"),
    ("--epochs", "train.epochs", int, "number of epochs"),
    ("--batch-size", "train.batch_size", int, "images per batch (per process)"),
    ("--seed", "train.seed", int, "random seed"),
    ("--device", "train.device", str, "auto, cpu, cuda, cuda:N or mps"),
    ("--amp", "train.amp", str, "mixed precision: auto, bf16, fp16 or off"),
    ("--best-metric", "train.best_metric", str, "metric that picks the best checkpoint (default auc)"),
    ("--runs", "run.runs", str, "folder that holds the run folders"),
    ("--name", "run.name", str, "run name (a folder name; made unique when taken)"),
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ffdv", description="Train and judge deepfake image detectors, headless.")
    parser.add_argument("--version", action="version", version=f"ffdv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a model (shows progress; the run folder keeps everything)")
    train.add_argument("--config", type=Path, help="TOML config; flags override it")
    for flag, dest, kind, help_text in TRAIN_FLAGS:
        train.add_argument(flag, dest=dest, type=kind, help=help_text)
    train.add_argument("--ema", dest="train.ema", action="store_true", default=None, help="keep an EMA of weights")
    train.add_argument("--compile", dest="train.compile", action="store_true", default=None, help="torch.compile")
    train.add_argument("--resume", metavar="RUN", help="continue a stopped or crashed run (folder or name)")

    run = sub.add_parser("run", help=argparse.SUPPRESS)  # python -m engine run RUN_DIR: the engine process
    run.add_argument("run_dir", type=Path)
    run.add_argument("--resume", action="store_true")

    for name, text in (("evaluate", "metrics of a checkpoint on a labelled split"),
                       ("predict", "write a submission CSV (img_name,y_pred) for a split")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--checkpoint", required=True, help="a .safetensors file, or a run folder (its best)")
        p.add_argument("--data", required=True, type=Path, help="a split folder, its label file, or a dataset root")
        p.add_argument("--split", help="with a dataset root: train, val or test")
        p.add_argument("--labels", type=Path, help="label or list file, when it is not beside the folder")
        p.add_argument("--out", type=Path, help="output file (default: in the run folder)")
        p.add_argument("--batch-size", type=int, default=64)
        p.add_argument("--workers", type=int, default=-1)
        p.add_argument("--device", default="auto")
        p.add_argument("--model", help="model name, for a checkpoint whose sidecar is lost")
        p.add_argument("--img-size", type=int, help="input size, for a checkpoint whose sidecar is lost")

    models = sub.add_parser("models", help="list timm model names (optionally matching a pattern like '*efficientnet*')")
    models.add_argument("pattern", nargs="?", default="")
    models.add_argument("--json", action="store_true", help="as a JSON list")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        handler = {"train": cmd_train, "run": cmd_run, "evaluate": cmd_evaluate, "predict": cmd_predict,
                   "models": cmd_models}[args.command]
        return handler(args)
    except FfdvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------- train


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if "." in k and v is not None}


def _find_run(value: str, runs: str) -> Path:
    for candidate in (Path(value), Path(runs) / value):
        if (candidate / "config.toml").is_file():
            return candidate
    raise FfdvError(f"{value}: no run folder with a config.toml here or in {runs}/")


def cmd_train(args: argparse.Namespace) -> int:
    from engine.config import load_config, resolve
    from engine.models import check_model_name
    from engine.runstore import RunPaths, create_run_dir, write_engine_info
    from engine.train import check_training_data, save_config

    overrides = _overrides(args)
    if args.resume:
        paths = RunPaths(_find_run(args.resume, overrides.get("run.runs", "runs")))
        config = load_config(paths.config, {k: v for k, v in overrides.items() if k == "train.epochs"})
        check_training_data(config)
        save_config(paths, config)
        return _train_here(paths, config, resume=True)
    config = resolve(load_config(args.config, overrides))
    check_training_data(config)  # a broken label file stops us before a run folder exists
    check_model_name(config.model.name)
    paths = create_run_dir(config.run.runs, config.run.name or None, default_stem=config.model.name)
    config.run.name = paths.root.name
    save_config(paths, config)
    write_engine_info(paths)
    return _train_here(paths, config, resume=False)


def _train_here(paths, config, resume: bool) -> int:
    from engine.console import ConsoleView
    from engine.runstore import EventWriter
    from engine.sink import EventSink
    from engine.train import Trainer

    view = ConsoleView()
    sink = EventSink(EventWriter(paths.events), [view])
    try:
        finished = Trainer(paths, config, sink).run(resume=resume)
    finally:
        view.close()
        sink.close()
    view.console.print(f"run folder: {paths.root}")
    if (paths.checkpoints / "best.safetensors").exists():
        view.console.print(f"best checkpoint: {paths.checkpoints / 'best.safetensors'}")
    return 0 if finished.status in ("completed", "stopped") else 1


def cmd_run(args: argparse.Namespace) -> int:
    """The engine process of a prepared run folder (its config.toml)."""
    from engine.config import load_config
    from engine.runstore import RunPaths, write_engine_info

    paths = RunPaths(args.run_dir)
    config = load_config(paths.config)
    write_engine_info(paths)
    return _train_here(paths, config, resume=args.resume)


# ---------------------------------------------------------------- evaluate / predict


def _score(args: argparse.Namespace, default_split: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from engine.config import Config, resolve_workers
    from engine.dataset import resolve_split
    from engine.predict import inference_setup, load_checkpoint, score_split

    setup = inference_setup(args.device)
    split = resolve_split(args.data, args.split or (default_split if _is_root(args.data) else None), args.labels)
    loaded = load_checkpoint(args.checkpoint, setup, args.model, args.img_size)
    config = Config()
    config.data.workers = args.workers
    started = time.monotonic()
    with Progress(TextColumn(f"[bold]{split.folder.name}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True) as progress:
        task = progress.add_task("score", total=len(split))
        scores = score_split(loaded, split, setup, args.batch_size, resolve_workers(config),
                             on_batch=lambda n: progress.advance(task, n))
    return loaded, split, scores, time.monotonic() - started


def _is_root(path: Path) -> bool:
    return any((path / d).is_dir() for d in ("trainset", "valset", "testset", "train", "val", "test"))


def _report_unreadable(split, scores) -> None:
    if scores.bad:
        names = [split.names[i] for i in sorted(scores.bad)][:20]
        print(f"warning: {len(scores.bad)} images could not be decoded: {', '.join(names)}", file=sys.stderr)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from engine.console import confusion_table, metric_list_table
    from engine.predict import default_evaluation_paths, evaluation_report, write_evaluation

    loaded, split, scores, seconds = _score(args, "val")
    report = evaluation_report(loaded, split, scores, seconds)
    out = args.out or default_evaluation_paths(loaded.path, split)
    predictions = write_evaluation(out, report, split, scores)
    console = Console()
    console.print(f"[bold]{loaded.path.resolve().name}[/] on {split.folder}: {len(scores.index)} images")
    console.print(metric_list_table(report["metrics"]))
    console.print(confusion_table(report["metrics"]["confusion"]))
    _report_unreadable(split, scores)
    console.print(f"metrics: {out}\npredictions: {predictions}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from engine.predict import write_submission

    loaded, split, scores, seconds = _score(args, "test")
    out = args.out
    if out is None:
        run_dir = loaded.path.resolve().parent.parent
        stem = f"{loaded.path.resolve().stem}-{split.folder.name}.csv"
        out = run_dir / "submissions" / stem if loaded.path.resolve().parent.name == "checkpoints" else Path(stem)
    write_submission(out, split, scores)
    _report_unreadable(split, scores)
    print(f"wrote {out}: {len(split)} rows (img_name,y_pred) in {seconds:.1f}s")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    import timm

    pattern = args.pattern or ""
    if pattern and not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    names = timm.list_models(pattern) if pattern else timm.list_models()
    print(json.dumps(names) if args.json else "\n".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
