"""``ffdv evaluate`` with several checkpoints, datasets or perturbations, and ``ffdv predict`` with an ensemble.

Everything a user can get wrong (a spec, an unlabelled split, a soup across
architectures) is checked before the first image is decoded.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from engine.checkpoint_loading import inference_setup
from engine.contract.config import resolve_workers
from engine.contract.errors import FfdvError
from engine.contract.fmt import fmt_duration, fmt_metric
from engine.contract.jobs import JobMessage, JobProgress, MatrixResult, SubmissionResult
from engine.contract.matrixfolder import own_matrix_folder
from engine.contract.perturbspec import Perturbation, parse_suite
from engine.contract.submission import UNDECODABLE_SCORE, default_submission
from engine.contract.text import plain_text, printable
from engine.data.dataset import resolve_split
from engine.ensemble import ENSEMBLES, TTA_MODES, mean_ensemble, parse_choices, rank_ensemble
from engine.matrix import (
    MatrixRunner,
    Plan,
    Progress,
    Row,
    check_soup_plan,
    dataset_sources,
    default_name,
    default_out,
    load_members,
    refuse_unlabelled,
    score_pass,
    soup_member,
)

PREDICT_ENSEMBLES = ("mean", "rank", "soup")
PIPED_WIDTH = 100_000


def build_plan(args: argparse.Namespace, setup) -> Plan:
    perturbations = parse_suite(args.perturb or ["none"])
    ensembles = parse_choices(args.ensemble, ENSEMBLES, "--ensemble")
    tta = parse_choices(args.tta, TTA_MODES, "--tta")
    if args.labels and len(args.data) > 1:
        raise FfdvError("--labels names the label file of one split; with several --data, pass each split's folder "
                        "with its label file beside it (NAME_label.txt)")
    splits = [resolve_split(d, args.split, args.labels, default_split="val") for d in args.data]
    for split in splits:
        refuse_unlabelled(split)
    members = load_members(list(args.checkpoint), setup, args.model, args.img_size)
    if "soup" in ensembles or "greedy" in ensembles:
        check_soup_plan(members)
    plan = Plan(members, dataset_sources(splits), perturbations, ensembles, tta, seed=args.seed,
                batch_size=args.batch_size, workers=resolve_workers(args.workers))
    if "soup" in ensembles:
        plan.members.append(soup_member("soup", "soup", plan.checkpoints, setup))
    return plan


def cmd_matrix(args: argparse.Namespace, json_line: Callable[[JobMessage], None]) -> int:
    import pandas as pd
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    from engine.matrix_report import finish_matrix, matrix_tables, read_matrix_csv, source_tables

    setup = inference_setup(args.device)
    plan = build_plan(args, setup)
    out = Path(args.out) if args.out else default_out(plan, args.name or default_name(plan))
    started = time.monotonic()
    console = Console(stderr=args.progress == "json")
    if not console.is_terminal:  # piped or redirected: tables at their natural width, never an AUC split over lines
        console = Console(stderr=args.progress == "json", width=PIPED_WIDTH)
    with own_matrix_folder(out):  # refuses a folder it does not own, or one another matrix is writing
        if args.progress == "json":
            def show(p: Progress) -> None:
                json_line(JobProgress(done=p.done, total=p.total, stage=p.stage,
                                      eta_s=None if p.eta_s is None else round(p.eta_s, 1)))

            json_line(JobProgress(done=0, total=0, stage="loading"))
            runner = MatrixRunner(plan, setup, out, show)
            runner.run()
        else:
            console.print(plain_text(f"matrix {out}: {len(plan.members)} models x {len(plan.datasets)} datasets x "
                                     f"{len(plan.perturbations)} perturbations on {setup.describe()}"))
            with Bar(TextColumn("{task.fields[stage]}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                     console=console, transient=True) as bar:
                task = bar.add_task("matrix", total=None, stage="")

                def show(p: Progress) -> None:
                    bar.update(task, completed=p.done, total=p.total, stage=printable(p.stage, 60))

                runner = MatrixRunner(plan, setup, out, show)
                runner.run()
        report = finish_matrix(runner, time.monotonic() - started)
    if args.progress == "json":
        json_line(MatrixResult(matrix_dir=str(out), matrix=report["files"]["matrix"], scores=report["files"]["scores"],
                               rows=report["rows"], reused_cells=len(runner.reused_cells),
                               computed_cells=len(runner.computed_cells)))
        return 0
    table = read_matrix_csv(out)
    for grid in matrix_tables(table):
        console.print(grid)
    if "by_source" in report["files"]:
        for grid in source_tables(Path(report["files"]["by_source"])):
            console.print(grid)
    if runner.greedy:  # the table's own number for the soup, so the console and matrix.csv never disagree
        first = plan.datasets[0].key
        found = table[(table["model"] == "greedy-soup") & (table["dataset"] == first) & (table["perturbation"] == "none")]
        auc = fmt_metric(None if found.empty or pd.isna(found["auc"].iloc[0]) else float(found["auc"].iloc[0]))
        console.print(plain_text(f"greedy soup: {' + '.join(runner.greedy['ingredients'])} "
                                 f"(AUC {auc} on {first} · none)"))
    for key, count in report["unreadable"].items():
        if count:
            print(f"warning: {count} images of {printable(key)} could not be decoded (left out of the metrics)",
                  file=sys.stderr)
    for (dataset, perturbation), count in perturbation_failures(table).items():
        print(f"warning: {count} images of {printable(dataset)} could not be perturbed by {printable(perturbation)} "
              "(unreadable in that cell only; the reasons are in scores.parquet)", file=sys.stderr)
    reused = f", {len(runner.reused_cells)} reused from an earlier run" if runner.reused_cells else ""
    console.print(plain_text(f"{len(runner.computed_cells)} cells scored in {fmt_duration(report['seconds'])}{reused}"))
    for label, path in (("matrix", report["files"]["matrix"]), ("scores", report["files"]["scores"]),
                        ("settings", out / "matrix.json")):
        console.print(plain_text(f"{label}: {path}"))
    return 0


def perturbation_failures(table) -> dict[tuple[str, str], int]:
    """Images a perturbation failed on, per cell: unreadable there beyond the dataset's undecodable ones."""
    found = {}
    for dataset, part in table.groupby("dataset", sort=False):
        clean = int(part[part["perturbation"] == "none"]["unreadable"].max())
        for perturbation, rows in part.groupby("perturbation", sort=False):
            extra = int(rows["unreadable"].max()) - clean
            if extra > 0:
                found[(str(dataset), str(perturbation))] = extra
    return found


def cmd_predict_ensemble(args: argparse.Namespace, json_line: Callable[[JobMessage], None]) -> int:
    """A submission from several checkpoints (mean, rank or soup) and/or TTA views."""
    import numpy as np

    from engine.inference import Scores
    from engine.predict import write_submission

    ensembles = parse_choices(args.ensemble, PREDICT_ENSEMBLES, "--ensemble") or ["mean"]
    if len(ensembles) > 1:
        raise FfdvError(f"--ensemble {args.ensemble!r}: a submission comes from one ensemble; pick one of "
                        f"{', '.join(PREDICT_ENSEMBLES)}")
    tta = tuple(parse_choices(args.tta, TTA_MODES, "--tta"))
    setup = inference_setup(args.device)
    split = resolve_split(args.data, args.split, args.labels, default_split="test")
    members = load_members(list(args.checkpoint), setup, args.model, args.img_size)
    if ensembles == ["soup"]:
        check_soup_plan(members)
        members = [soup_member("soup", "soup", members, setup)]
    rows = [(Row(m.key, tta), m) for m in members]
    started = time.monotonic()
    done = [0]

    def report(n: int) -> None:
        done[0] += n
        if args.progress == "json":
            json_line(JobProgress(done=done[0], total=len(split)))

    result = score_pass(rows, split, Perturbation(), setup, args.batch_size, resolve_workers(args.workers), 0, report)
    columns = [result.scores[r.key] for r, _ in rows]
    score = rank_ensemble(columns) if ensembles == ["rank"] else mean_ensemble(columns)
    readable = ~np.isnan(score)
    index = np.flatnonzero(readable)
    targets = split.targets if split.targets is not None else np.full(len(split), -1)
    scores = Scores(index, score[readable], np.asarray(targets)[readable], np.zeros(len(index)), result.bad)
    label = "-".join([ensembles[0], *tta]) if len(rows) > 1 or tta else ensembles[0]
    out = args.out or default_submission(members[0].loaded.path, split.folder.name, label)
    write_submission(out, split, scores)
    if args.progress == "json":
        json_line(SubmissionResult(submission=str(out), rows=len(split), unreadable=len(result.bad)))
        return 0
    if result.bad:
        names = [split.names[i] for i in sorted(result.bad)][:20]
        print(f"warning: {len(result.bad)} images could not be decoded (y_pred {UNDECODABLE_SCORE}): "
              f"{', '.join(printable(n) for n in names)}", file=sys.stderr)
    what = f"{ensembles[0]} of {len(args.checkpoint)}" if len(args.checkpoint) > 1 else "1 checkpoint"
    print(f"wrote {out}: {len(split)} rows (img_name,y_pred) from {what}{' with TTA ' + '+'.join(tta) if tta else ''} "
          f"in {time.monotonic() - started:.1f}s")
    return 0
