"""``ffdv compare`` and ``ffdv export``: several runs side by side, or as tables and event files for other tools."""

from __future__ import annotations

import argparse
import sys

from engine.contract.errors import FfdvError
from engine.contract.text import plain_text, printable


def add_commands(sub) -> dict:
    compare = sub.add_parser(
        "compare", help="compare runs: the settings that differ, the best of every metric with its epoch",
        description="Print one row per run: only the settings that differ, the best (not last) value of every "
                    "metric with its epoch, images/s, duration and status.",
        epilog="example: ffdv compare lr-0.001 lr-0.003 --baseline lr-0.001 --sort 'best AUC'")
    compare.add_argument("run", nargs="+", metavar="RUN", help="run folder or name (a timm train.py output folder too)")
    compare.add_argument("--runs", default="runs", metavar="DIR", help="folder that holds the run folders")
    compare.add_argument("--baseline", metavar="RUN", help="show the other runs as differences from this one")
    compare.add_argument("--sort", metavar="COLUMN", help="order the rows by this column (its header, e.g. 'best AUC')")

    export = sub.add_parser(
        "export", help="export runs as CSV tables or TensorBoard event files",
        description="--csv DIR writes DIR/metrics.csv (run, epoch, step, every metric) and DIR/runs.csv (every "
                    "setting, status, best metric, duration). --tensorboard DIR writes event files (needs the "
                    "tensorboard extra).",
        epilog="example: ffdv export lr-0.001 lr-0.003 --csv exported/")
    export.add_argument("run", nargs="+", metavar="RUN", help="run folder or name")
    export.add_argument("--runs", default="runs", metavar="DIR", help="folder that holds the run folders")
    export.add_argument("--csv", metavar="DIR", help="write metrics.csv and runs.csv here")
    export.add_argument("--tensorboard", metavar="DIR", help="write TensorBoard event files here (one folder a run)")
    return {"compare": cmd_compare, "export": cmd_export}


def _summaries(names: list[str], runs: str):
    from engine.contract.runsummary import find_run_folder, summarize

    folders = [find_run_folder(name, runs) for name in names]
    seen = set()
    for folder in folders:
        if folder.name in seen:
            raise FfdvError(f"{folder}: named twice (two runs named {folder.name!r}). Fix: name each run once.")
        seen.add(folder.name)
    return [summarize(folder) for folder in folders]


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from engine.contract.compare import better_is_lower, compare, compare_table

    comparison = compare(_summaries(args.run, args.runs))
    if args.baseline is not None and args.baseline not in {r.name for r in comparison.runs}:
        raise FfdvError(f"--baseline {args.baseline}: not one of the runs compared. Fix: name one of "
                        + ", ".join(printable(r.name, 60) for r in comparison.runs))
    table = compare_table(comparison, args.baseline)
    if args.sort is not None:
        if args.sort not in table.columns:
            raise FfdvError(f"--sort {args.sort}: no such column. Fix: one of " + ", ".join(table.columns))
        table = compare_table(comparison, args.baseline, args.sort, descending=not better_is_lower(args.sort))
    out = Table(header_style="bold", show_edge=False)
    for column in table.columns:
        out.add_column(plain_text(column), no_wrap=True)
    for row in table.rows:
        out.add_row(*(plain_text(cell.text) for cell in row))
    console = Console()
    if not console.is_terminal:
        console = Console(width=100_000)  # a pipe or a file: every column in full, for grep and diff
    console.print(out)
    if not comparison.differing:
        print("every setting is the same in these runs")
    for note in comparison.notes:
        print("note: " + printable(note, 2000), file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if not args.csv and not args.tensorboard:
        raise FfdvError("export: say where: --csv DIR and/or --tensorboard DIR")
    summaries = _summaries(args.run, args.runs)
    if args.tensorboard:
        from engine.export_tensorboard import summary_writer

        summary_writer()  # the extra is missing: say so before writing anything
    if args.csv:
        from engine.contract.export import export_csv

        for path in export_csv(summaries, args.csv):
            print(f"wrote {printable(path)}")
    if args.tensorboard:
        from engine.export_tensorboard import export_tensorboard

        for path in export_tensorboard(summaries, args.tensorboard):
            print(f"wrote {printable(path)}/")
        print(f"view them with: tensorboard --logdir {printable(args.tensorboard)}")
    return 0
