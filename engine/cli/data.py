"""``ffdv scan`` (health scan, leakage audit) and ``ffdv split`` (a leakage-free split): the dataset commands.

Both run torch-free code from engine.data; this module only draws their progress and results.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from engine.cli.common import print_json
from engine.contract.text import printable

SHOWN_PAIRS = 20  # pairs printed; the CSV of --out has all of them


@contextmanager
def _progress(mode: str) -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback (what, done, total): a rich bar on stderr, or JSON lines on stdout."""
    if mode == "json":
        yield lambda what, done, total: print_json({"stage": what, "done": done, "total": total})
        return
    tasks: dict[str, int] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:

        def update(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = progress.add_task(what, total=total)
            progress.update(tasks[what], completed=done, total=total)

        yield update


def add_commands(sub) -> dict:
    scan = sub.add_parser("scan", help="health scan of a dataset; --leakage: near-copies across its splits")
    scan.add_argument("data", type=Path, metavar="DATA", help="dataset folder")
    scan.add_argument("--leakage", action="store_true",
                      help="find validation and test images with a near-copy in training (perceptual hashes)")
    scan.add_argument("--threshold", type=int, metavar="BITS", help="near-copy: at most this many of 64 hash bits differ (default 8)")
    scan.add_argument("--predictions", type=Path, metavar="PATH",
                      help="a run folder or its per-image predictions CSV: metrics with and without the near-copies")
    scan.add_argument("--spectrum", action="store_true",
                      help="mean residual spectra of real and fake images, their difference and radial profiles")
    scan.add_argument("--split", help="--spectrum: which split (default train)")
    scan.add_argument("--sample", type=int, default=200, metavar="N", help="--spectrum: images per class (default 200)")
    scan.add_argument("--out", type=Path, metavar="DIR", help="write leakage.json, leakage_pairs.csv (and unhashable.csv) "
                      "here; --spectrum: the spectra (default DATA/spectrum-<split>)")
    scan.add_argument("--workers", type=int, default=0, metavar="N", help="hashing processes (0: one per core)")
    scan.add_argument("--no-cache", action="store_true", help="hash every image again (the cache is still written)")
    scan.add_argument("--progress", choices=("bar", "json"), default="bar",
                      help="json: one JSON object a line (progress, then the result), for programs such as the app")

    split = sub.add_parser("split", help="write a new train/val split where near-duplicates never span two splits")
    split.add_argument("data", type=Path, metavar="DATA", help="dataset folder")
    split.add_argument("--by", choices=("hash-group", "cluster"), default="hash-group",
                       help="hash-group: near-copies stay together; cluster: also looser look-alikes (crops of one photo)")
    split.add_argument("--val", type=float, default=0.2, metavar="SHARE", help="share of the images in the new validation split")
    split.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the random split")
    split.add_argument("--threshold", type=int, metavar="BITS", help="link images whose hashes differ in at most this many bits")
    split.add_argument("--out", type=Path, metavar="DIR", help="new dataset folder (label files and links only; default DATA-split)")
    split.add_argument("--workers", type=int, default=0, metavar="N", help="hashing processes (0: one per core)")

    return {"scan": run_scan, "split": run_split}


def _health(args: argparse.Namespace) -> int:
    from engine.data.scan import scan_dataset

    with _progress(args.progress) as update:
        report = scan_dataset(args.data, on_progress=lambda r: update("scanning", r.scanned, r.images))
    if report.error:
        print(f"error: {report.error}", file=sys.stderr)
        return 2
    if args.progress == "json":
        print_json({"result": {"images": report.images, "issues": len(report.issues),
                               "label_problems": report.label_problems, "shortcut": report.shortcut}})
        return 0 if report.ok else 1
    console = Console(highlight=False)
    for stats in report.splits.values():
        classes = f" ({stats.real} real, {stats.fake} fake)" if stats.real is not None else ""
        console.print(Text(f"{stats.split}: {stats.images} images{classes}, {stats.issues} problems"))
    for problem in report.label_problems:
        console.print(Text(printable(problem, 2000, multiline=True)))
    for issue in report.issues[:50]:
        console.print(Text(printable(issue.message, 500)))
    if len(report.issues) > 50:
        console.print(f"... and {len(report.issues) - 50} more")
    if report.shortcut is not None:
        style = "bold yellow" if report.shortcut["warning"] else ""
        console.print(Text(f"shortcut audit: {printable(report.shortcut['message'], 2000)}", style=style))
    return 0 if report.ok else 1


def _metrics_table(report) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    for column in ("validation images", "images", "real", "fake", "AUC", "accuracy"):
        table.add_column(column, justify="left" if column == "validation images" else "right")
    labels = {"all": "all", "with": "with a near-copy in training", "without": "without one"}
    for key, label in labels.items():
        m = report.metrics[key]
        table.add_row(label, str(m.images), str(m.real), str(m.fake),
                      "–" if m.auc is None else f"{m.auc:.4f}", "–" if m.accuracy is None else f"{m.accuracy:.4f}")
    return table


def _leakage(args: argparse.Namespace) -> int:
    from engine.data.leakage import DEFAULT_THRESHOLD, audit, write_report

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    with _progress(args.progress) as update:
        report = audit(args.data, threshold, predictions=args.predictions, workers=args.workers,
                       on_progress=update, use_cache=not args.no_cache)
    written = write_report(report, args.out) if args.out else []
    if args.progress == "json":
        print_json({"result": {**report.to_json(), "written": [str(p) for p in written]}})
        return 0
    console = Console(highlight=False)
    console.print(Text(printable(report.headline(), 1000), style="bold"))
    for key, share in report.share.items():
        query, base = key.split("-")
        if share is not None:
            console.print(f"  {query} → {base}: {report.flagged[key]} of {report.hashed[query]} {query} images "
                          f"({share:.1%}) have a near-copy in {base}")
    hashed = ", ".join(f"{k} {v}" for k, v in report.hashed.items())
    cached = sum(report.cached.values())
    console.print(f"  hashed: {hashed} ({cached} from the cache) in {report.seconds:.1f} s")
    if report.metrics:
        console.print(Text(f"metrics of {printable(report.predictions, 300)}:"))
        console.print(_metrics_table(report))
    if report.pairs:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold",
                      title=f"closest pairs (first {min(SHOWN_PAIRS, len(report.pairs))} of {len(report.pairs)})",
                      title_justify="left")
        for column in ("split", "image", "near-copy in", "image", "distance"):
            table.add_column(column)
        for pair in sorted(report.pairs, key=lambda p: p.distance)[:SHOWN_PAIRS]:
            table.add_row(pair.split, Text(printable(pair.name, 80)), pair.other_split,
                          Text(printable(pair.other_name, 80)), str(pair.distance))
        console.print(table)
    if report.unhashable:
        console.print(f"[yellow]{len(report.unhashable)} images could not be hashed (left out):[/]")
        for item in report.unhashable[:20]:
            console.print(Text(f"  {item.split}/{printable(item.name, 200)}: {printable(item.reason, 300)}"))
    for path in written:
        console.print(Text(f"wrote {printable(str(path), 500)}"))
    return 0


def _spectrum(args: argparse.Namespace) -> int:
    from engine.contract.errors import DataError
    from engine.data.dataset import resolve_split
    from engine.data.spectrum import class_spectra, radial_profile, write_spectra

    if args.sample < 1:
        raise DataError(f"--sample {args.sample}: must be at least 1 image per class")
    split = resolve_split(args.data, args.split, None, default_split="train")
    with _progress(args.progress) as update:
        result = class_spectra(split, args.sample, on_progress=lambda done, total: update("spectra", done, total))
    out = args.out or Path(args.data) / f"spectrum-{split.folder.name}"
    written = write_spectra(result, out)
    if args.progress == "json":
        print_json({"result": {"counts": result.counts, "unreadable": result.unreadable, "out": str(out),
                               "written": [str(p) for p in written]}})
        return 0
    for name, power in result.mean_power.items():
        profile = radial_profile(power)
        top = len(profile) // 2
        print(f"{name}: {result.counts[name]} images; high-frequency share of residual power "
              f"{profile[top:].sum() / max(profile.sum(), 1e-12):.3f}")
    for name, reason in list(result.unreadable.items())[:20]:
        print(printable(f"  could not read {name}: {reason}", 500), file=sys.stderr)
    print(printable(f"wrote {len(written)} files to {out}", 500))
    return 0


def run_scan(args: argparse.Namespace) -> int:
    if args.spectrum:
        return _spectrum(args)
    return _leakage(args) if args.leakage else _health(args)


def run_split(args: argparse.Namespace) -> int:
    from engine.data.resplit import make_split

    out = args.out or args.data.with_name(f"{args.data.resolve().name}-split")
    with _progress("bar") as update:
        result = make_split(args.data, out, by=args.by, val=args.val, seed=args.seed, threshold=args.threshold,
                            workers=args.workers, on_progress=update)
    print(printable(result.summary(), 2000))
    for split, name, reason in result.unhashable[:20]:
        print(printable(f"  could not hash {split}/{name} ({reason}): kept as a group of its own", 500))
    return 0
