"""``ffdv explain``: class-activation maps of a checkpoint's calls, one overlay PNG and one .npy map per image."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.cli.common import json_line
from engine.contract.jobs import ExplainResult, JobProgress
from engine.contract.text import plain_text, printable

METHOD_CHOICES = ("gradcam", "gradcam++", "hirescam")
FILTER_CHOICES = ("misclassified", "fake", "real", "all")


def add_commands(sub) -> dict:
    p = sub.add_parser("explain", help="class-activation maps (where the model looks) for images of a split")
    p.add_argument("--checkpoint", required=True, help="a .safetensors file or a run folder (its best)")
    p.add_argument("--data", required=True, type=Path, help="a split folder, its label file, or a dataset root")
    p.add_argument("--split", help="with a dataset root: train, val or test (default val)")
    p.add_argument("--labels", type=Path, help="label or list file, when it is not beside the folder")
    p.add_argument("--images", help="comma-separated image names to explain (instead of --filter)")
    p.add_argument("--filter", choices=FILTER_CHOICES, default=None,
                   help="which images: misclassified (most wrong first; default with labels), fake, real, all")
    p.add_argument("--limit", type=int, default=16, help="at most this many images of the filter (default 16)")
    p.add_argument("--method", choices=METHOD_CHOICES, default="gradcam",
                   help="gradcam (gradients averaged per channel), gradcam++ (weighted by second-order terms) or "
                   "hirescam (gradients times activations, element-wise)")
    p.add_argument("--toward", choices=("fake", "real", "called"), default="fake",
                   help="the class each map argues for: fake (default), real, or the one the model calls")
    p.add_argument("--layer", help="the module to explain, as in model.named_modules() (default: per family)")
    p.add_argument("--out", type=Path, help="output folder (default: explanations/<name>/ of the run)")
    p.add_argument("--batch-size", type=int, default=64, help="for scoring the split (--filter misclassified)")
    p.add_argument("--device", default="auto", metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--model", help="model name, for weights without a sidecar")
    p.add_argument("--img-size", type=int, help="input size, for weights without a sidecar")
    p.add_argument("--progress", choices=("bar", "json"), default="bar",
                   help="json: one JSON object a line (progress, then the result), for programs such as the app")
    return {"explain": cmd_explain}


def _scores(loaded, split, setup, args):
    """(positions, probabilities of fake) of the whole split: what --filter misclassified sorts by."""
    from engine.predict import score_split

    scores = score_split(loaded, split, setup, args.batch_size, 0)
    return scores.index, scores.score


def cmd_explain(args: argparse.Namespace) -> int:
    from engine.cam import ExplainError, find_target_layer
    from engine.checkpoint_loading import inference_setup, load_checkpoint
    from engine.data.dataset import resolve_split
    from engine.explain import default_out_dir, explain_split, select_images, write_csv, write_explanation

    if args.limit < 1:
        raise ExplainError(f"--limit {args.limit}: must be at least 1")
    names = [n.strip() for n in args.images.split(",") if n.strip()] if args.images else None
    setup = inference_setup(args.device, amp="off")
    split = resolve_split(args.data, args.split, args.labels, default_split="val")
    loaded = load_checkpoint(args.checkpoint, setup, args.model, args.img_size)
    loaded.model.eval()
    target = find_target_layer(loaded.model, args.layer, loaded.spec.img_size)
    filter_name = args.filter or ("misclassified" if split.targets is not None else "all")
    positions = select_images(split, names, filter_name, args.limit, lambda: _scores(loaded, split, setup, args))
    out_dir = args.out or default_out_dir(loaded.path, split, args.method, args.toward)
    rows, unreadable, started = [], {}, time.monotonic()
    if args.progress == "json":
        json_line(JobProgress(done=0, total=len(positions), stage="explain"))
    for item in explain_split(loaded.model, loaded.spec, target, split, positions, setup.device, args.method,
                                 args.toward):
        if isinstance(item, tuple):
            unreadable[item[0]] = item[1]
        else:
            rows.append(write_explanation(out_dir, item))
        if args.progress == "json":
            json_line(JobProgress(done=len(rows) + len(unreadable), total=len(positions), stage="explain"))
    csv = write_csv(out_dir, rows)
    seconds = time.monotonic() - started
    if args.progress == "json":
        json_line(ExplainResult(out_dir=str(out_dir), csv=str(csv), method=args.method, layer=target.name,
                                explained=len(rows), unreadable=unreadable,
                                extra={"toward": args.toward, "seconds": round(seconds, 3)}))
        return 0
    from rich.console import Console
    from rich.text import Text

    Console().print(Text.assemble(f"{args.method} of layer ", plain_text(target.name, "bold"), f": {len(rows)} images in "
                                  f"{seconds:.1f}s ({seconds / max(1, len(rows)):.2f}s each)\n", "wrote ", plain_text(csv)))
    for name, reason in unreadable.items():
        print(f"warning: {printable(name, 200)} could not be decoded: {printable(reason, 300)}", file=sys.stderr)
    return 0
