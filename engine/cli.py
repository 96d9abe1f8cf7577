"""``ffdv``: the engine without the app (train, evaluate, predict, models).

Every input problem a user can fix ends the command with a message naming the
file, the line and the fix, and exit status 2; a failed run exits 1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from engine import __version__
from engine.contract.errors import FfdvError
from engine.contract.jobs import EvaluationResult, JobFailed, JobMessage, JobProgress, SubmissionResult, encode_job_message
from engine.contract.status import RunOutcome, RunStatus
from engine.contract.text import plain_text, printable

ERROR_LIMIT = 20_000  # an error lists up to 20 problems with their lines; more is a bug, not a message

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
    ("--nproc-per-node", "dist.nproc_per_node", int, "processes on this machine, one per GPU (torchrun)"),
    ("--nnodes", "dist.nnodes", int, "machines taking part (the run folder on a shared file system)"),
    ("--node-rank", "dist.node_rank", int, "this machine's number, 0 to nnodes-1 (0 writes the run store)"),
    ("--rdzv-endpoint", "dist.rdzv_endpoint", str, "HOST:PORT of machine 0, with --nnodes > 1"),
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
    train.add_argument("--sync-bn", dest="dist.sync_bn", action="store_true", default=None,
                       help="SyncBatchNorm over all processes")
    train.add_argument("--resume", metavar="RUN", help="continue a stopped or crashed run (folder or name)")
    train.add_argument("--detach", action="store_true", help="start the run and return at once")

    run = sub.add_parser("run", help=argparse.SUPPRESS)  # python -m engine run RUN_DIR: the engine process
    run.add_argument("run_dir", type=Path)
    run.add_argument("--resume", action="store_true")
    supervise = sub.add_parser("supervise", help=argparse.SUPPRESS)  # the engine's parent (engine/contract/launch.py)
    supervise.add_argument("run_dir", type=Path)
    supervise.add_argument("--resume", action="store_true")
    supervise.add_argument("--daemon", action="store_true")
    supervise.add_argument("--nproc-per-node", type=int, default=1)
    supervise.add_argument("--nnodes", type=int, default=1)
    supervise.add_argument("--node-rank", type=int, default=0)
    supervise.add_argument("--rdzv-endpoint", default="")

    runs = sub.add_parser("runs", help="list the runs: status, epoch, best metric, start, duration")
    runs.add_argument("--runs", default="runs", help="folder that holds the run folders")

    watch = sub.add_parser("watch", help="follow a run, live or finished (Ctrl+C leaves it running)")
    watch.add_argument("run", help="run folder or name")
    watch.add_argument("--runs", default="runs")
    watch.add_argument("--from-end", action="store_true", help="show only what happens from now on")

    for name, text in (("pause", "pause a running run at its next step"), ("resume", "continue a paused run"),
                       ("stop", "stop a run cleanly (checkpoint first)"),
                       ("checkpoint", "save a checkpoint of a running run now")):
        p = sub.add_parser(name, help=text)
        p.add_argument("run", help="run folder or name")
        p.add_argument("--runs", default="runs")
        p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the engine's answer")

    for name, text in (("evaluate", "metrics of a checkpoint on a labelled split"),
                       ("predict", "write a submission CSV (img_name,y_pred) for a split")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--checkpoint", required=True, nargs="+",
                       help=".safetensors files or run folders (their best); several make a matrix or an ensemble")
        p.add_argument("--data", required=True, type=Path, nargs="+" if name == "evaluate" else None,
                       help="split folders, label files or dataset roots" if name == "evaluate"
                       else "a split folder, its label file, or a dataset root")
        p.add_argument("--split", help="with a dataset root: train, val or test")
        p.add_argument("--labels", type=Path, help="label or list file, when it is not beside the folder")
        p.add_argument("--out", type=Path, help="output file (default: in the run folder)")
        p.add_argument("--batch-size", type=int, default=64)
        p.add_argument("--workers", type=int, default=-1)
        p.add_argument("--device", default="auto")
        p.add_argument("--model", help="model name, for weights without a sidecar (lost, or trained elsewhere)")
        p.add_argument("--img-size", type=int, help="input size, for weights without a sidecar")
        p.add_argument("--progress", choices=("bar", "json"), default="bar",
                       help="json: one JSON object a line (progress, then the result), for programs such as the app")
        if name == "evaluate":
            p.add_argument("--perturb", nargs="+", metavar="SPEC",
                           help="perturbations: standard, jpeg:Q, resize:F, blur:S, noise:S, crop:F, chains a+b, a .toml")
            p.add_argument("--name", help="the matrix's folder name under evaluations/ (default: from its settings)")
            p.add_argument("--seed", type=int, default=0, help="seed of the per-image perturbation noise")
        p.add_argument("--ensemble", help="mean, rank, soup" + (", greedy (comma separated; each a row)"
                                                                 if name == "evaluate" else " (one)"))
        p.add_argument("--tta", help="test-time augmentation: flip, scales (comma separated"
                       + ("; each a row beside the plain one)" if name == "evaluate" else ")"))

    scan = sub.add_parser("scan", help="health scan of a dataset; --leakage: near-copies across its splits")
    scan.add_argument("data", type=Path, help="dataset folder")
    scan.add_argument("--leakage", action="store_true",
                      help="find validation and test images with a near-copy in training (perceptual hashes)")
    scan.add_argument("--threshold", type=int, help="near-copy: at most this many of 64 hash bits differ (default 8)")
    scan.add_argument("--predictions", type=Path,
                      help="a run folder or its per-image predictions CSV: metrics with and without the near-copies")
    scan.add_argument("--out", type=Path, help="write leakage.json, leakage_pairs.csv (and unhashable.csv) here")
    scan.add_argument("--workers", type=int, default=0, help="hashing processes (0: one per core)")
    scan.add_argument("--no-cache", action="store_true", help="hash every image again (the cache is still written)")
    scan.add_argument("--progress", choices=("bar", "json"), default="bar",
                      help="json: one JSON object a line (progress, then the result), for programs such as the app")

    split = sub.add_parser("split", help="write a new train/val split where near-duplicates never span two splits")
    split.add_argument("data", type=Path, help="dataset folder")
    split.add_argument("--by", choices=("hash-group", "cluster"), default="hash-group",
                       help="hash-group: near-copies stay together; cluster: also looser look-alikes (crops of one photo)")
    split.add_argument("--val", type=float, default=0.2, help="share of the images in the new validation split")
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--threshold", type=int, help="link images whose hashes differ in at most this many bits")
    split.add_argument("--out", type=Path, help="new dataset folder (label files and links only; default DATA-split)")
    split.add_argument("--workers", type=int, default=0, help="hashing processes (0: one per core)")

    models = sub.add_parser("models", help="list timm model names (optionally matching a pattern like '*efficientnet*')")
    models.add_argument("pattern", nargs="?", default="")
    models.add_argument("--json", action="store_true", help="as a JSON list")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        handler = {"train": cmd_train, "run": cmd_run, "supervise": cmd_supervise, "evaluate": cmd_evaluate,
                   "predict": cmd_predict, "models": cmd_models, "scan": cmd_scan, "split": cmd_split,
                   "runs": cmd_runs, "watch": cmd_watch,
                   "pause": cmd_control, "resume": cmd_control, "stop": cmd_control,
                   "checkpoint": cmd_control}[args.command]
        return handler(args)
    except (FfdvError, OSError) as exc:
        if isinstance(exc, OSError):
            from engine.contract.errors import storage_error

            exc = storage_error(exc) or exc
            if isinstance(exc, OSError):
                raise
        if getattr(args, "progress", "") == "json":
            _json_line(JobFailed(message=str(exc)))
        print(f"error: {printable(exc, ERROR_LIMIT, multiline=True)}", file=sys.stderr)
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
    from engine.contract.config import load_config, resolve, save_config
    from engine.contract.dataset import training_splits
    from engine.contract.launch import engine_alive
    from engine.contract.runstore import RunPaths, create_run_dir
    from engine.models import check_model_name

    overrides = _overrides(args)
    if args.resume:
        paths = RunPaths(_find_run(args.resume, overrides.get("run.runs", "runs")))
        if engine_alive(paths):
            raise FfdvError(f"{paths.root}: the run is still running; watch it with `ffdv watch {paths.root}`")
        keep = {k: v for k, v in overrides.items() if k == "train.epochs" or k.startswith("dist.")}
        config = load_config(paths.config, keep)
        training_splits(config.data.root)
        save_config(paths, config)
        if not any(paths.checkpoints.glob("*.state.pt")):
            print(f"{paths.root}: nothing to resume from (the run ended before its first checkpoint); it starts again "
                  "from the beginning in the same folder.", file=sys.stderr)
        return _start(paths, config, resume=True, detach=args.detach)
    config = resolve(load_config(args.config, overrides))
    training_splits(config.data.root)  # a broken label file stops us before a run folder exists
    check_model_name(config.model.name)
    if config.dist.node_rank > 0:
        return _join(config, args.detach)
    paths = create_run_dir(config.run.runs, config.run.name or None, default_stem=config.model.name)
    config.run.name = paths.root.name
    try:
        save_config(paths, config)
    except BaseException:
        shutil.rmtree(paths.root, ignore_errors=True)  # a full or read-only disk leaves no empty run folder behind
        raise
    return _start(paths, config, resume=False, detach=args.detach)


def _join(config, detach: bool) -> int:
    """Machine N > 0 of a several-machine run: the run folder is machine 0's, on a shared file system."""
    from engine.contract.runstore import RunPaths

    if not config.run.name:
        raise FfdvError("--node-rank > 0 joins a run started on machine 0: pass its --name (and the same --runs)")
    root = Path(config.run.runs) / config.run.name
    if not (root / "config.toml").is_file():
        raise FfdvError(f"{root}: no run folder here; machine 0 creates it, and --runs must be on a shared file "
                        "system that every machine sees")
    return _start(RunPaths(root, node=config.dist.node_rank), config, resume=False, detach=detach)


def _start(paths, config, resume: bool, detach: bool) -> int:
    """Launch the engine process (torchrun for several); follow it here unless detached."""
    from engine.contract.launch import launch_run
    from engine.contract.runstate import load_run

    seen = load_run(paths.root).last_seq if resume else 0  # a resumed run's old end is not this one's
    pid = launch_run(paths, resume=resume, dist=config.dist)
    if detach or paths.node > 0:
        print(f"{paths.root}")
        print(f"engine started (pid {pid}); follow it with `ffdv watch {paths.root}`", file=sys.stderr)
        return 0
    return _follow(paths, from_start=True, interactive_stop=True, after_seq=seen)


def _follow(paths, from_start: bool, interactive_stop: bool = False, after_seq: int = 0) -> int:
    """Show a run's events (those after ``after_seq``) until it ends; Ctrl+C detaches, or stops when asked."""
    from engine.console import ConsoleView
    from engine.contract.launch import engine_alive, engine_exit, log_tail
    from engine.contract.runstore import EventReader, append_command

    view = ConsoleView()
    reader = EventReader(paths.events, from_seq=after_seq + 1)
    if not from_start:
        for event in reader.poll():
            if event.kind == "run_started":
                view(event)  # the header and the progress bar; the history is skipped
    last, next_check = None, 0.0
    try:
        while True:
            events = reader.poll()
            for event in events:
                view(event)
                last = event
            if last is not None and last.kind == "run_finished":
                return 0 if last.status in (RunOutcome.COMPLETED, RunOutcome.STOPPED) else 1
            now = time.monotonic()
            if not events and now >= next_check:
                next_check = now + 1.0
                if engine_alive(paths) is False and paths.engine.exists():
                    for event in reader.poll():
                        view(event)
                        last = event
                    if last is not None and last.kind == "run_finished":
                        continue
                    view.close()
                    print(f"run crashed: the engine is gone ({engine_exit(paths).describe()}) without finishing. "
                          f"Last lines of {paths.log}:", file=sys.stderr)
                    print("\n".join("  " + printable(line) for line in log_tail(paths)), file=sys.stderr)
                    print(f"Continue it with `ffdv train --resume {paths.root}`.", file=sys.stderr)
                    return 1
            time.sleep(0.1)
    except KeyboardInterrupt:
        view.close()
        if interactive_stop and _ask_stop():
            append_command(paths, "stop")
            print("stopping: the engine finishes its step and saves a checkpoint...", file=sys.stderr)
            return _follow_after_stop(paths, reader, view)
        print(f"detached; the run goes on. Follow it again with `ffdv watch {paths.root}`.", file=sys.stderr)
        return 0
    finally:
        view.close()


def _ask_stop() -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        answer = input("\nStop the run, or detach and leave it running? [d]etach / [s]top: ").strip().lower()
    except (EOFError, KeyboardInterrupt):
        return False
    return answer.startswith("s")


def _follow_after_stop(paths, reader, view) -> int:
    from engine.contract.launch import engine_alive

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for event in reader.poll():
            view(event)
            if event.kind == "run_finished":
                return 0
        if engine_alive(paths) is False:
            return 1
        time.sleep(0.1)
    return 1


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


# ---------------------------------------------------------------- runs, watch, commands


def cmd_runs(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from engine.contract.fmt import fmt_duration, fmt_metric
    from engine.contract.launch import run_status
    from engine.contract.runstate import load_run
    from engine.contract.runstore import RunPaths

    root = Path(args.runs)
    folders = sorted(p for p in root.iterdir() if (p / "config.toml").is_file()) if root.is_dir() else []
    if not folders:
        print(f"no runs in {printable(root)}/ yet; start one with `ffdv train --data DATA`")
        return 0
    rows = []
    for folder in folders:
        state = load_run(folder)
        status = run_status(RunPaths(folder), state)
        started = time.strftime("%m-%d %H:%M", time.localtime(state.started_at)) if state.started_at else "–"
        best = f"{state.best_metric} {fmt_metric(state.best_value)}" if state.best_value is not None else "–"
        epochs = f"{state.epoch}/{state.epochs}" if state.epochs else "–"
        problem = state.problems[-1] if state.problems else ""
        rows.append((state.started_at or 0, folder.name, status, epochs, best, started,
                     fmt_duration(state.duration), str(state.world_size), problem))
    columns = ["run", "status", "epoch", "best", "started", "duration", "ranks"]
    if any(row[-1] for row in rows):
        columns.append("problem")
    table = Table(header_style="bold", show_edge=False)
    for column in columns:
        table.add_column(column, justify="right" if column in ("epoch", "ranks") else "left",
                         no_wrap=column not in ("run", "problem"))
    colours = {RunStatus.RUNNING: "green", RunStatus.PAUSED: "yellow", RunStatus.CRASHED: "red", RunStatus.FAILED: "red",
               RunStatus.UNRESPONSIVE: "red"}
    for row in sorted(rows, key=lambda row: (row[0], row[1])):  # cells are Text: names are data, never markup
        name, status, *numbers, problem = row[1:]
        cells = [plain_text(name), plain_text(status, colours.get(status, "")), *(plain_text(n) for n in numbers)]
        table.add_row(*cells, *([plain_text(problem, "red", 200)] if "problem" in columns else []))
    Console().print(table)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from engine.contract.runstore import RunPaths

    return _follow(RunPaths(_find_run(args.run, args.runs)), from_start=not args.from_end)


COMMAND_NAMES = {"pause": "pause", "resume": "resume", "stop": "stop", "checkpoint": "checkpoint_now"}


def cmd_control(args: argparse.Namespace) -> int:
    """Send a command through commands.jsonl and wait for the engine's answer (its event)."""
    from engine.contract.launch import run_status
    from engine.contract.runstate import load_run
    from engine.contract.runstore import EventReader, RunPaths, append_command
    from engine.contract.status import LIVE_STATUSES

    paths = RunPaths(_find_run(args.run, args.runs))
    state = load_run(paths.root)
    status = run_status(paths, state)
    if status not in LIVE_STATUSES:
        hint = f"; continue it with `ffdv train --resume {paths.root}`" if status in (RunStatus.STOPPED, RunStatus.CRASHED) else ""
        raise FfdvError(f"{paths.root}: the run is {status}, so there is nothing to {args.command}{hint}")
    reader = EventReader(paths.events, from_seq=state.last_seq + 1)
    command_id = append_command(paths, COMMAND_NAMES[args.command])
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        for event in reader.poll():
            answered = event.extra.get("command") == command_id
            if answered and event.kind in ("error", "warning"):
                print(f"{args.command}: {printable(event.message)}", file=sys.stderr)
                return 1
            if answered or (args.command == "stop" and event.kind == "run_finished"):
                print(_describe_answer(event))
                return 0
        time.sleep(0.1)
    print(f"{args.command}: sent, no answer within {args.wait:.0f}s (the engine reads commands between training "
          "steps; it may be validating). The command stays queued.", file=sys.stderr)
    return 1


def _describe_answer(event) -> str:
    if event.kind == "paused":
        return f"paused at epoch {event.epoch + 1}, step {event.step}"
    if event.kind == "resumed":
        return f"resumed at epoch {event.epoch + 1}, step {event.step}"
    if event.kind == "checkpoint_saved":
        return f"checkpoint saved: {printable(event.path)}"
    if event.kind == "run_finished":
        return f"run {printable(event.status)} after {event.epochs_completed} epochs"
    return event.kind


# ---------------------------------------------------------------- evaluate / predict


def _score(args: argparse.Namespace, default_split: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from engine.contract.config import Config, resolve_workers
    from engine.contract.dataset import resolve_split
    from engine.predict import inference_setup, load_checkpoint, score_split

    setup = inference_setup(args.device)
    split = resolve_split(args.data, args.split, args.labels, default_split=default_split)
    loaded = load_checkpoint(args.checkpoint, setup, args.model, args.img_size)
    config = Config()
    config.data.workers = args.workers
    started = time.monotonic()
    if args.progress == "json":
        done = [0]

        def report(n: int) -> None:
            done[0] += n
            _json_line(JobProgress(done=done[0], total=len(split)))

        _json_line(JobProgress(done=0, total=len(split)))
        scores = score_split(loaded, split, setup, args.batch_size, resolve_workers(config), on_batch=report)
        return loaded, split, scores, time.monotonic() - started
    with Progress(TextColumn(f"[bold]{split.folder.name}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True) as progress:
        task = progress.add_task("score", total=len(split))
        scores = score_split(loaded, split, setup, args.batch_size, resolve_workers(config),
                             on_batch=lambda n: progress.advance(task, n))
    return loaded, split, scores, time.monotonic() - started


def _json_line(message: JobMessage) -> None:
    print(encode_job_message(message), flush=True)


def _report_unreadable(split, scores) -> None:
    if scores.bad:
        names = [split.names[i] for i in sorted(scores.bad)][:20]
        print(f"warning: {len(scores.bad)} images could not be decoded: {', '.join(printable(n, 200) for n in names)}",
              file=sys.stderr)


def _is_matrix(args: argparse.Namespace) -> bool:
    return (len(args.checkpoint) > 1 or len(args.data) > 1 or bool(args.perturb or args.ensemble or args.tta)
            or bool(args.name))


def cmd_evaluate(args: argparse.Namespace) -> int:
    if _is_matrix(args):
        from engine.matrix_cli import cmd_matrix

        return cmd_matrix(args, _json_line)
    args.checkpoint, args.data = args.checkpoint[0], args.data[0]
    return _evaluate_one(args)


def _evaluate_one(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    from engine.console import confusion_table, metric_list_table
    from engine.predict import check_output_file, default_evaluation_paths, evaluation_report, write_evaluation

    check_output_file(args.out, "--out")
    loaded, split, scores, seconds = _score(args, "val")
    report = evaluation_report(loaded, split, scores, seconds)
    out = args.out or default_evaluation_paths(loaded.path, split)
    predictions = write_evaluation(out, report, split, scores)
    if args.progress == "json":
        _json_line(EvaluationResult(metrics_file=str(out), predictions=str(predictions), images=str(split.folder),
                                    metrics=report["metrics"], unreadable=len(scores.bad)))
        return 0
    console = Console()
    console.print(Text.assemble(plain_text(loaded.path.resolve().name, "bold"), " on ", plain_text(split.folder),
                                f": {len(scores.index)} images"))
    console.print(metric_list_table(report["metrics"]))
    console.print(confusion_table(report["metrics"]["confusion"]))
    _report_unreadable(split, scores)
    console.print(Text.assemble("metrics: ", plain_text(out), "\npredictions: ", plain_text(predictions)))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from engine.predict import check_output_file, write_submission

    if len(args.checkpoint) > 1 or args.ensemble or args.tta:
        from engine.matrix_cli import cmd_predict_ensemble

        return cmd_predict_ensemble(args, _json_line)
    args.checkpoint = args.checkpoint[0]
    check_output_file(args.out, "--out")
    loaded, split, scores, seconds = _score(args, "test")
    out = args.out
    if out is None:
        run_dir = loaded.path.resolve().parent.parent
        stem = f"{loaded.path.resolve().stem}-{split.folder.name}.csv"
        out = run_dir / "submissions" / stem if loaded.path.resolve().parent.name == "checkpoints" else Path(stem)
    write_submission(out, split, scores)
    if args.progress == "json":
        _json_line(SubmissionResult(submission=str(out), rows=len(split), unreadable=len(scores.bad)))
        return 0
    _report_unreadable(split, scores)
    print(f"wrote {out}: {len(split)} rows (img_name,y_pred) in {seconds:.1f}s")
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    from engine.dataset_cli import run_scan

    return run_scan(args)


def cmd_split(args: argparse.Namespace) -> int:
    from engine.dataset_cli import run_split

    return run_split(args)


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
