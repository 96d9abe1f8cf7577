"""``ffdv calibrate``: a temperature and operating points (thresholds at target FPRs) for one checkpoint."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from engine.cli.common import print_json
from engine.contract.errors import CheckpointError
from engine.contract.text import plain_text


def add_commands(sub) -> dict:
    p = sub.add_parser("calibrate", help="fit a temperature and thresholds at target FPRs on a labelled split")
    p.add_argument("--checkpoint", required=True, help="a .safetensors file or a run folder (its best)")
    p.add_argument("--data", required=True, type=Path, help="a labelled split folder, its label file, or a dataset root")
    p.add_argument("--split", help="with a dataset root: train, val or test (default val)")
    p.add_argument("--labels", type=Path, help="label file, when it is not beside the folder")
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="images per batch")
    p.add_argument("--workers", type=int, default=-1, metavar="N",
                   help="data loader processes (-1: one per core, at most 8; 0: in this process)")
    p.add_argument("--device", default="auto", metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--model", help="model name, for weights without a sidecar")
    p.add_argument("--img-size", type=int, help="input size, for weights without a sidecar")
    p.add_argument("--progress", choices=("bar", "json"), default="bar",
                   help="json: progress lines, then {\"result\": {\"calibration\": ...}}")
    return {"calibrate": cmd_calibrate}


def _store(weights: Path, calibration: dict) -> Path:
    """Write the calibration into the checkpoint's sidecar (atomically), keeping every other field."""
    from engine.contract.runstore import atomic_write_json
    from engine.contract.sidecar import sidecar_path

    path = sidecar_path(weights)
    if not path.is_file():
        raise CheckpointError(f"{path}: the checkpoint has no sidecar to store the calibration in. Fix: calibrate a "
                              "checkpoint of an ffdv run (its .json beside the .safetensors).")
    data = json.loads(path.read_text(encoding="utf-8"))
    data["calibration"] = calibration
    atomic_write_json(path, data)
    return path


def cmd_calibrate(args: argparse.Namespace) -> int:
    from engine.calibration import calibrate
    from engine.cli.judge import _report_unreadable, _score

    loaded, split, scores, _ = _score(args, "val")
    if split.targets is None:
        raise CheckpointError(f"{split.folder}: this split has no labels, so nothing can be calibrated on it. Fix: pass "
                              "a labelled validation split.")
    calibration = calibrate(scores.score, scores.target, f"{split.folder.resolve()} ({split.name})")
    stored = _store(loaded.path, calibration)
    if args.progress == "json":
        print_json({"result": {"calibration": calibration, "sidecar": str(stored)}})
        return 0
    _report_unreadable(split, scores)
    console = Console(highlight=False)
    console.print(Text.assemble("calibrated ", plain_text(loaded.path.name, "bold"), " on ", plain_text(split.folder),
                                f" ({calibration['images']} images)"))
    console.print(f"temperature {calibration['temperature']:.4f} · ECE {calibration['ece_before']:.4f} → "
                  f"{calibration['ece_after']:.4f} · NLL {calibration['nll_before']:.4f} → {calibration['nll_after']:.4f}")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", title="operating points on this split",
                  title_justify="left")
    for column in ("point", "threshold", "calibrated", "FPR", "TPR", "balanced acc"):
        table.add_column(column, justify="left" if column == "point" else "right")
    for key, point in calibration["thresholds"].items():
        table.add_row(key, f"{point['raw']:.6f}", f"{point['calibrated']:.6f}", f"{point['fpr']:.4f}",
                      f"{point['tpr']:.4f}", f"{point['balanced_accuracy']:.4f}")
    console.print(table)
    console.print(Text.assemble("stored in ", plain_text(stored), "; use: ffdv predict --calibrated --threshold fpr:0.01"))
    return 0
