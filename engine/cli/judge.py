"""``ffdv evaluate`` and ``ffdv predict`` of one checkpoint; several (a matrix, an ensemble) go to ``engine.cli.matrix``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.cli.common import json_line
from engine.contract.jobs import EvaluationResult, JobProgress, SubmissionResult
from engine.contract.text import plain_text, printable

OUT_HELP = {
    "evaluate": "one checkpoint on one split: --out NAME writes NAME.json (metrics) and NAME.csv (per-image "
                "predictions), any other suffix of NAME replaced, so neither overwrites the other; a matrix: a new "
                "or empty folder that becomes its own (matrix.csv, scores.parquet, matrix.json, cells/). Default: "
                "evaluations/ of the run",
    "predict": "the submission CSV (img_name,y_pred); default: submissions/ of the run",
}


def add_commands(sub) -> dict:
    for name, text in (("evaluate", "metrics of a checkpoint on a labelled split"),
                       ("predict", "write a submission CSV (img_name,y_pred) for a split")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--checkpoint", required=True, nargs="+", metavar="CHECKPOINT",
                       help=".safetensors files or run folders (their best); several make a matrix or an ensemble")
        p.add_argument("--data", required=True, type=Path, nargs="+" if name == "evaluate" else None, metavar="PATH",
                       help="split folders, label files or dataset roots" if name == "evaluate"
                       else "a split folder, its label file, or a dataset root")
        p.add_argument("--split", metavar="{train,val,test}", help="with a dataset root: the split to read")
        p.add_argument("--labels", type=Path, metavar="FILE", help="label or list file, when it is not beside the folder")
        p.add_argument("--out", type=Path, metavar="PATH" if name == "evaluate" else "FILE", help=OUT_HELP[name])
        p.add_argument("--batch-size", type=int, default=64, metavar="N", help="images per batch")
        p.add_argument("--workers", type=int, default=-1, metavar="N",
                       help="data loader processes (-1: one per core, at most 8; 0: in this process)")
        p.add_argument("--device", default="auto", metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps")
        p.add_argument("--model", metavar="NAME", help="model name, for weights without a sidecar (lost, or trained elsewhere)")
        p.add_argument("--img-size", type=int, metavar="PX", help="input size, for weights without a sidecar")
        p.add_argument("--progress", choices=("bar", "json"), default="bar",
                       help="json: one JSON object a line (progress, then the result), for programs such as the app")
        if name == "evaluate":
            p.add_argument("--perturb", nargs="+", metavar="SPEC",
                           help="perturbations: standard, jpeg:Q, resize:F, blur:S, noise:S, crop:F, chains a+b, a .toml")
            p.add_argument("--name", metavar="NAME", help="the matrix's folder name under evaluations/ (default: from its settings)")
            p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the per-image perturbation noise")
        p.add_argument("--ensemble", metavar="METHODS", help="mean, rank, soup" + (", greedy (comma separated; each a row)"
                                                                 if name == "evaluate" else " (one)"))
        p.add_argument("--tta", metavar="KINDS", help="test-time augmentation: flip, scales (comma separated"
                       + ("; each a row beside the plain one)" if name == "evaluate" else ")"))
        if name == "predict":
            p.add_argument("--calibrated", action="store_true",
                           help="apply the temperature that `ffdv calibrate` stored in the checkpoint's sidecar")
            p.add_argument("--threshold", metavar="T",
                           help="also write decisions (img_name,y_pred,decision) beside the submission: a number, "
                                "or a stored point: fpr:0.001, fpr:0.01, fpr:0.05, balanced")

    return {"evaluate": cmd_evaluate, "predict": cmd_predict}


def _score(args: argparse.Namespace, default_split: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from engine.checkpoint_loading import inference_setup, load_checkpoint
    from engine.contract.config import resolve_workers
    from engine.data.dataset import resolve_split
    from engine.predict import score_split

    setup = inference_setup(args.device)
    split = resolve_split(args.data, args.split, args.labels, default_split=default_split)
    loaded = load_checkpoint(args.checkpoint, setup, args.model, args.img_size)
    started = time.monotonic()
    if args.progress == "json":
        done = [0]

        def report(n: int) -> None:
            done[0] += n
            json_line(JobProgress(done=done[0], total=len(split)))

        json_line(JobProgress(done=0, total=len(split)))
        scores = score_split(loaded, split, setup, args.batch_size, resolve_workers(args.workers), on_batch=report)
        return loaded, split, scores, time.monotonic() - started
    with Progress(TextColumn(f"[bold]{split.folder.name}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True) as progress:
        task = progress.add_task("score", total=len(split))
        scores = score_split(loaded, split, setup, args.batch_size, resolve_workers(args.workers),
                             on_batch=lambda n: progress.advance(task, n))
    return loaded, split, scores, time.monotonic() - started


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
        from engine.cli.matrix import cmd_matrix

        return cmd_matrix(args, json_line)
    args.checkpoint, args.data = args.checkpoint[0], args.data[0]
    return _evaluate_one(args)


def _evaluate_one(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    from engine.console import confusion_table, metric_list_table, source_table
    from engine.predict import check_output_file, default_evaluation_paths, evaluation_report, write_evaluation

    check_output_file(args.out, "--out")
    if args.out is not None and args.out.suffix.lower() != ".json":  # X.csv: metrics X.json, predictions X.csv
        args.out = args.out.with_suffix(".json")
        check_output_file(args.out, "--out")
    loaded, split, scores, seconds = _score(args, "val")
    report = evaluation_report(loaded, split, scores, seconds)
    out = args.out or default_evaluation_paths(loaded.path, split)
    predictions = write_evaluation(out, report, split, scores)
    if args.progress == "json":
        json_line(EvaluationResult(metrics_file=str(out), predictions=str(predictions), images=str(split.folder),
                                    metrics=report["metrics"], unreadable=len(scores.bad),
                                    by_source=report["by_source"]))
        return 0
    console = Console()
    console.print(Text.assemble(plain_text(loaded.path.resolve().name, "bold"), " on ", plain_text(split.folder),
                                f": {len(scores.index)} images"))
    console.print(metric_list_table(report["metrics"]))
    console.print(confusion_table(report["metrics"]["confusion"]))
    if report["by_source"]:
        console.print(source_table([(loaded.path.resolve().name, report["by_source"], report["mean_over_sources"])]))
    _report_unreadable(split, scores)
    console.print(Text.assemble("metrics: ", plain_text(out), "\npredictions: ", plain_text(predictions)))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from engine.contract.errors import FfdvError
    from engine.contract.operating import resolve_threshold
    from engine.contract.submission import default_submission
    from engine.predict import check_output_file, write_decisions, write_submission

    if len(args.checkpoint) > 1 or args.ensemble or args.tta:
        if args.calibrated or args.threshold:
            raise FfdvError("--calibrated and --threshold work with one checkpoint (a calibration belongs to one "
                            "model). Fix: leave them out for an ensemble, or predict with one checkpoint.")
        from engine.cli.matrix import cmd_predict_ensemble

        return cmd_predict_ensemble(args, json_line)
    args.checkpoint = args.checkpoint[0]
    check_output_file(args.out, "--out")
    loaded, split, scores, seconds = _score(args, "test")
    out = args.out or default_submission(loaded.path, split.folder.name)
    calibration = loaded.sidecar.calibration
    if args.calibrated:
        if not calibration:
            raise FfdvError(f"{loaded.path}: --calibrated needs a temperature, and its sidecar has no calibration. "
                            "Fix: run `ffdv calibrate --checkpoint C --data VAL` first.")
        from engine.calibration import apply_temperature

        scores.score = apply_temperature(scores.score, calibration["temperature"])
    threshold = resolve_threshold(args.threshold, calibration, args.calibrated, loaded.path) if args.threshold else None
    write_submission(out, split, scores)
    decisions = write_decisions(out, split, scores, threshold) if threshold is not None else None
    if args.progress == "json":
        json_line(SubmissionResult(submission=str(out), rows=len(split), unreadable=len(scores.bad),
                                   extra={"decisions": str(decisions)} if decisions else {}))
        return 0
    _report_unreadable(split, scores)
    print(f"wrote {out}: {len(split)} rows (img_name,y_pred) in {seconds:.1f}s")
    if calibration and (args.calibrated or args.threshold):
        print(f"calibration of {calibration.get('split', '?')}" + ("" if str(calibration.get("split", "")).startswith(
            f"{split.folder.resolve()} (") else " (another split than this one)"))
    if decisions is not None:
        print(f"wrote {decisions}: fake where y_pred > {threshold:.6f} ({args.threshold})")
    return 0
