"""``ffdv runs``, ``watch`` and the run commands (pause, resume, stop, checkpoint): following and steering runs."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.cli.common import find_run
from engine.contract.errors import FfdvError
from engine.contract.fmt import fmt_count
from engine.contract.status import RunStatus
from engine.contract.text import plain_text, printable


def add_commands(sub) -> dict:
    runs = sub.add_parser("runs", help="list the runs: status, epoch, best metric, start, duration")
    runs.add_argument("--runs", default="runs", metavar="DIR", help="folder that holds the run folders")

    watch = sub.add_parser("watch", help="follow a run, live or finished (Ctrl+C leaves it running)")
    watch.add_argument("run", metavar="RUN", help="run folder or name")
    watch.add_argument("--runs", default="runs", metavar="DIR", help="folder that holds the run folders")
    watch.add_argument("--from-end", action="store_true", help="show only what happens from now on")

    for name, text in (("pause", "pause a running run at its next step"), ("resume", "continue a paused run"),
                       ("stop", "stop a run cleanly (checkpoint first)"),
                       ("checkpoint", "save a checkpoint of a running run now")):
        p = sub.add_parser(name, help=text)
        p.add_argument("run", metavar="RUN", help="run folder or name")
        p.add_argument("--runs", default="runs", metavar="DIR", help="folder that holds the run folders")
        p.add_argument("--wait", type=float, default=60.0, metavar="SECONDS", help="seconds to wait for the engine's answer")
    return {"runs": cmd_runs, "watch": cmd_watch, "pause": cmd_control, "resume": cmd_control, "stop": cmd_control,
            "checkpoint": cmd_control}


def follow(paths, from_start: bool, interactive_stop: bool = False, after_seq: int = 0) -> int:
    """Show a run's events (those after ``after_seq``) until it ends; Ctrl+C detaches, or stops when asked.

    A crash is told the way the app tells it (``run_status``): the events so far, corrected by whether the
    engine still lives.
    """
    from engine.console import ConsoleView
    from engine.contract.runstate import RunState
    from engine.contract.runstore import EventReader, append_command

    view = ConsoleView()
    reader = EventReader(paths.events, from_seq=after_seq + 1)
    state = RunState(run_id=paths.root.name)
    if not from_start:
        for event in _read(reader, state):
            if event.kind == "run_started":
                view(event)  # the header and the progress bar; the history is skipped
    next_check = 0.0
    try:
        while True:
            events = _read(reader, state)
            for event in events:
                view(event)
            if not state.is_live:
                return 0 if state.status in (RunStatus.FINISHED, RunStatus.STOPPED) else 1
            now = time.monotonic()
            if not events and now >= next_check:
                next_check = now + 1.0
                if _crashed(paths, reader, state, view):
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


def _read(reader, state) -> list:
    events = reader.poll()
    state.apply(events)
    return events


def _crashed(paths, reader, state, view) -> bool:
    """Whether the run crashed (said with the log's last lines); events written just before the end are shown first."""
    from engine.contract.launch import engine_exit, log_tail, run_status

    if run_status(paths, state) != RunStatus.CRASHED:
        return False
    for event in _read(reader, state):
        view(event)
    if not state.is_live:
        return False
    view.close()
    print(f"run crashed: the engine is gone ({engine_exit(paths).describe()}) without finishing. "
          f"Last lines of {paths.log}:", file=sys.stderr)
    print("\n".join("  " + printable(line) for line in log_tail(paths)), file=sys.stderr)
    print(f"Continue it with `ffdv train --resume {paths.root}`.", file=sys.stderr)
    return True


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


def cmd_runs(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from engine.contract.fmt import fmt_duration, fmt_metric
    from engine.contract.launch import run_status
    from engine.contract.runstate import load_run
    from engine.contract.runstore import RunPaths, run_folders
    from engine.contract.timm_run import TimmFollower, is_timm_run, timm_folders

    root = Path(args.runs)
    folders = sorted(run_folders(root) + timm_folders(root))  # timm's train.py output folders too, read-only
    if not folders:
        print(f"no runs in {printable(root)}/ yet; start one with `ffdv train --data DATA`")
        return 0
    rows = []
    for folder in folders:
        if is_timm_run(folder):  # timm's train.py output: read-only, from its summary.csv
            timm = TimmFollower(folder)
            timm.poll()
            state, status = timm.state, timm.state.status
            state.problems += [timm.problem] if timm.problem else []
        else:
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

    return follow(RunPaths(find_run(args.run, args.runs)), from_start=not args.from_end)


COMMAND_NAMES = {"pause": "pause", "resume": "resume", "stop": "stop", "checkpoint": "checkpoint_now"}


def cmd_control(args: argparse.Namespace) -> int:
    """Send a command through commands.jsonl and wait for the engine's answer (its event)."""
    from engine.contract.launch import run_status
    from engine.contract.runstate import load_run
    from engine.contract.runstore import EventReader, RunPaths, append_command
    from engine.contract.status import LIVE_STATUSES

    paths = RunPaths(find_run(args.run, args.runs))
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
        return f"run {printable(event.status)} after {fmt_count(event.epochs_completed, 'epoch')}"
    return event.kind
