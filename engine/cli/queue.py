"""``ffdv queue`` (list, hold, release, cancel, move, run: the runner) and ``ffdv sweep``: runs that wait their turn."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.contract.errors import FfdvError
from engine.contract.text import plain_text, printable

QUEUE_EPILOG = """examples:
  ffdv train --data sample_data --model resnet18 --queue    queue a run instead of starting it
  ffdv queue run --runs runs --until-empty                  start queued runs one after another, then exit
  ffdv queue --runs runs                                    list the queue
  ffdv queue move lr0.003-resnet18 1                        make it the next to start"""
SWEEP_EPILOG = """example sweep.toml:
  [data]
  root = "sample_data"
  [sweep]
  "optim.lr" = [0.001, 0.003]
  "model.name" = ["resnet18", "efficientnet_b0"]

  ffdv sweep sweep.toml --runs runs --dry-run     show the four runs, queue nothing
  ffdv sweep sweep.toml --runs runs               queue them (then: ffdv queue run --runs runs)"""


def add_commands(sub) -> dict:
    queue = sub.add_parser("queue", help="list the queue, manage it, or run it (ffdv queue run)",
                           description="List queued, running and finished queue runs in order; "
                                       "manage the queue; `ffdv queue run` starts queued runs as slots free up.",
                           epilog=QUEUE_EPILOG)
    queue.add_argument("--runs", default="runs", metavar="DIR", help="folder that holds the run folders (default: runs)")
    actions = queue.add_subparsers(dest="queue_action", metavar="ACTION")
    for name, text in (("hold", "keep a queued run waiting until released"),
                       ("release", "let a held run start again in its turn"),
                       ("cancel", "take a queued run off the queue for good (its folder stays)")):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument("run", metavar="RUN", help="the queued run's name")
        action.add_argument("--runs", default=argparse.SUPPRESS, metavar="DIR", help="folder that holds the run folders")
    move = actions.add_parser("move", help="put a queued run at a place in the queue (1: next)",
                              description="Put a queued run at POSITION in the queue (1: the next to start).")
    move.add_argument("run", metavar="RUN", help="the queued run's name")
    move.add_argument("position", metavar="POSITION", type=int, help="1 for the next to start; past the end: last")
    move.add_argument("--runs", default=argparse.SUPPRESS, metavar="DIR", help="folder that holds the run folders")
    runner = actions.add_parser("run", help="the queue runner: start queued runs whenever a slot is free",
                                description="Start the next queued run whenever a slot is free: one run per GPU "
                                            "(CUDA_VISIBLE_DEVICES set per run), one at a time without a GPU. "
                                            "Engines are detached: killing the runner leaves them training.")
    runner.add_argument("--runs", default=argparse.SUPPRESS, metavar="DIR", help="folder that holds the run folders")
    runner.add_argument("--slots", type=int, default=1, metavar="N",
                        help="runs at a time per GPU (or on the CPU) (default: 1)")
    runner.add_argument("--gpus", metavar="IDS", help="GPUs to use, e.g. 0,1 (default: CUDA_VISIBLE_DEVICES, "
                        "else every GPU nvidia-smi lists; '' for none)")
    runner.add_argument("--until-empty", action="store_true", help="exit when nothing is queued or running")
    runner.add_argument("--background", action="store_true", help="start the runner detached and return at once "
                        "(its output goes to DIR/queue-runner.log)")

    sweep = sub.add_parser("sweep", help="queue one run per combination of a sweep file's settings",
                           description="FILE is a run config TOML plus a [sweep] table: dotted setting names, each "
                                       "with a list of values. Every combination is checked before any is queued.",
                           epilog=SWEEP_EPILOG)
    sweep.add_argument("file", metavar="FILE", type=Path, help="the sweep file (TOML)")
    sweep.add_argument("--runs", metavar="DIR", help="folder that holds the run folders (default: the file's "
                       "[run] runs, else runs)")
    sweep.add_argument("--dry-run", action="store_true", help="list the runs it would queue; queue nothing")
    return {"queue": cmd_queue, "sweep": cmd_sweep}


def cmd_queue(args: argparse.Namespace) -> int:
    from engine.contract import queue

    runs_root = Path(args.runs)
    action = args.queue_action
    if action is None:
        return list_queue(runs_root)
    if action == "run":
        return _run(args, runs_root)
    if action == "move":
        where = queue.move(runs_root, args.run, args.position)
        print(f"{printable(args.run)}: now number {where} in the queue")
        return 0
    getattr(queue, action)(runs_root, args.run)
    done = {"hold": "held (it waits until released)", "release": "released (it starts in its turn)",
            "cancel": "cancelled (it will not start; its folder stays)"}
    print(f"{printable(args.run)}: {done[action]}")
    return 0


def _run(args: argparse.Namespace, runs_root: Path) -> int:
    from engine.contract.queue_runner import runner_alive, serve_queue, start_runner_detached

    if args.background:
        alive = runner_alive(runs_root)
        if alive:
            raise FfdvError(f"{runs_root}: a queue runner already serves this folder (pid {alive.get('pid')})")
        pid = start_runner_detached(runs_root, args.slots, args.until_empty)
        print(f"queue runner started (pid {pid}); its output: {runs_root / 'queue-runner.log'}")
        return 0
    gpus = None if args.gpus is None else [g for g in args.gpus.split(",") if g.strip()]
    try:
        return serve_queue(runs_root, args.slots, args.until_empty, gpus)
    except KeyboardInterrupt:
        print("queue runner stopped; the runs it started go on", file=sys.stderr)
        return 0


def list_queue(runs_root: Path) -> int:
    from rich.console import Console
    from rich.table import Table

    from engine.contract.queue import read_order
    from engine.contract.queue_runner import runner_alive
    from engine.contract.queue_view import queue_rows

    problem = read_order(runs_root).problem
    if problem:
        print(f"warning: {printable(problem)}", file=sys.stderr)
    rows = [(row.place, row.name, row.status, row.model, row.started) for row in queue_rows(runs_root)]
    alive = runner_alive(runs_root)
    runner = f"queue runner: pid {alive.get('pid')}" if alive else "queue runner: none (start one: ffdv queue run)"
    if not rows:
        print(f"nothing queued in {printable(runs_root)}/; {runner}")
        return 0
    table = Table(header_style="bold", show_edge=False)
    for column in ("#", "run", "status", "model", "started"):
        table.add_column(column, justify="right" if column == "#" else "left")
    for row in rows:
        table.add_row(*(plain_text(cell) for cell in row))
    Console().print(table)
    print(runner)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from engine.contract.runstart import check_run_inputs, queue_run
    from engine.contract.sweep import expand_sweep
    from engine.models import check_model_name

    runs = expand_sweep(args.file)
    for model in dict.fromkeys(run.config.model.name for run in runs):
        check_model_name(model)
    checked = set()
    for run in runs:  # every run's inputs before any is queued: one bad dataset queues nothing
        inputs = (run.config.data.root, run.config.data.pseudo_fakes)
        if inputs not in checked:
            check_run_inputs(run.config)
            checked.add(inputs)
    runs_root = Path(args.runs or runs[0].config.run.runs)
    if args.dry_run:
        for run in runs:
            print(f"{run.name}  " + ", ".join(f"{k} = {v!r}" for k, v in run.values.items()))
        print(f"{len(runs)} runs; nothing queued (--dry-run)", file=sys.stderr)
        return 0
    names = [queue_run(run.config, runs_root).root.name for run in runs]
    for name in names:
        print(name)
    print(f"{len(names)} runs queued in {runs_root}/; start them with `ffdv queue run --runs {runs_root}`",
          file=sys.stderr)
    return 0


