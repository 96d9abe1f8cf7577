"""The evaluation matrix against `ffdv evaluate` once per cell, and against the model-alone limit.

3 checkpoints x 2 datasets x the standard suite (11 perturbations):
(a) the matrix: one `ffdv evaluate --checkpoint A B C --data D1 D2 --perturb standard` process;
(b) the baseline the issue names: one `ffdv evaluate` process per cell (checkpoint x dataset x
    perturbation), each decoding, perturbing and scoring on its own (--baseline-cells N times
    N of them, spread evenly, and scales their mean to all 66 when the machine is slow);
(c) the same per-cell work in one process (no start-up cost), to show what sharing the
    decode alone is worth;
(d) the limit: each model alone on a batch already in memory.
Images are FFDI-like JPEGs generated from the bundled sample photographs (bench_engine's).

    python bench/bench_matrix.py [--images 32] [--img-size 128] [--sides 256 512] [--baseline-cells 12]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import timm
import torch
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_engine import limit_predict, machine, make_bench_data  # noqa: E402
from report import report  # noqa: E402

from engine.checkpoint_loading import inference_setup  # noqa: E402
from engine.contract.perturbspec import parse_suite  # noqa: E402
from engine.data.dataset import resolve_split  # noqa: E402
from engine.matrix import Row, load_members, score_pass  # noqa: E402

FFDV = [sys.executable, "-m", "engine"]
MODELS = ("a", "b", "c")


def make_checkpoints(root: Path, model: str, img_size: int) -> list[Path]:
    """Three run folders with a best checkpoint each (fresh weights, distinct seeds: speed does not care)."""
    runs = []
    for seed, name in enumerate(MODELS):
        folder = root / name / "checkpoints"
        if not (folder / "best.json").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            torch.manual_seed(seed)
            net = timm.create_model(model, pretrained=False, num_classes=2)
            cfg = timm.data.resolve_model_data_config(net)
            save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "best.safetensors"))
            (folder / "best.json").write_text(json.dumps({
                "model": model, "num_classes": 2, "classes": ["real", "fake"], "img_size": img_size,
                "mean": list(cfg["mean"]), "std": list(cfg["std"]), "eval_crop": 1.0, "format": 1, "epoch": 1,
                "step": 1, "reason": "epoch", "best_metric": "auc", "metric_value": None, "is_best": True,
                "created": 0.0, "run": name}))
        runs.append(root / name)
    return runs


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet10t")
    parser.add_argument("--img-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=-1)
    parser.add_argument("--images", type=int, default=32, help="validation images per dataset")
    parser.add_argument("--sides", type=int, nargs=2, default=(256, 512), metavar=("MIN", "MAX"))
    parser.add_argument("--baseline-cells", type=int, default=12,
                        help="time this many of the per-cell evaluate processes (evenly spread) and scale to all")
    parser.add_argument("--json", type=Path, default=REPO / ".bench" / "matrix.json")
    args = parser.parse_args()
    bench = REPO / ".bench"
    datasets = [make_bench_data(bench / f"matrix-data-{i}-{args.images}", 0, args.images, tuple(args.sides))
                for i in (1, 2)]
    for i, data in enumerate(datasets):  # the second dataset: other photographs' order, so it is not a copy
        if i == 1 and not (data / ".shuffled").exists():
            label = data / "valset_label.txt"
            lines = label.read_text().splitlines()
            label.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
            (data / ".shuffled").touch()
    datasets = [d / "valset" for d in datasets]  # the split folders (the generated train splits are empty)
    runs = make_checkpoints(bench / "matrix-runs", args.model, args.img_size)
    perturbations = parse_suite(["standard"])
    cells = len(MODELS) * len(datasets) * len(perturbations)
    common = ["--batch-size", str(args.batch_size), "--workers", str(args.workers), "--device", "auto"]
    print(f"machine: {machine()}")
    print(f"{len(MODELS)} x {args.model} at {args.img_size} px, {len(datasets)} datasets x {args.images} JPEGs "
          f"({args.sides[0]}-{args.sides[1]} px), {len(perturbations)} perturbations: {cells} cells")

    with tempfile.TemporaryDirectory(dir=bench) as tmp:
        out = Path(tmp)
        matrix_s = timed([*FFDV, "evaluate", "--checkpoint", *map(str, runs), "--data", *map(str, datasets),
                          "--perturb", "standard", "--out", str(out / "matrix"), *common])
        every = [(run, d, data, p) for run in runs for d, data in enumerate(datasets) for p in perturbations]
        sample = every[:: max(1, len(every) // args.baseline_cells)][: args.baseline_cells]
        measured = 0.0
        for run, d, data, p in sample:
            measured += timed([*FFDV, "evaluate", "--checkpoint", str(run), "--data", str(data), "--perturb", p.name,
                               "--out", str(out / f"cell-{run.name}-{d}-{p.name}"), *common])
        per_cell_s = measured / len(sample) * len(every)  # the mean of the timed cells, times every cell
        shutil.rmtree(out, ignore_errors=True)

    setup = inference_setup("auto")
    members = load_members([str(r) for r in runs], setup)
    splits = [resolve_split(d) for d in datasets]
    workers = 2 if args.workers < 0 else args.workers
    start = time.perf_counter()
    for split in splits:
        for p in perturbations:
            score_pass([(Row(m.key), m) for m in members], split, p, setup, args.batch_size, workers)
    shared_s = time.perf_counter() - start
    start = time.perf_counter()
    for member in members:
        for split in splits:
            for p in perturbations:
                score_pass([(Row(member.key), member)], split, p, setup, args.batch_size, workers)
    separate_s = time.perf_counter() - start

    limit_args = argparse.Namespace(model=args.model, img_size=args.img_size, batch_size=args.batch_size // 2)
    limit = max(limit_predict(limit_args, False), limit_predict(limit_args, True))
    images_per_model = len(datasets) * args.images * len(perturbations)
    results: dict[str, float | int | str] = {
        "machine": machine(),
        "cells": cells,
        "matrix: one ffdv evaluate, s": matrix_s,
        "baseline: cells timed": len(sample),
        "baseline: ffdv evaluate per cell, s": per_cell_s,
        "speed-up over evaluate per cell": per_cell_s / matrix_s,
        "in process: shared decode, s": shared_s,
        "in process: per model, s": separate_s,
        "speed-up of the shared decode alone": separate_s / shared_s,
        "matrix: images/s per model": images_per_model / matrix_s,
        "in process shared: images/s per model": images_per_model / shared_s,
        "model alone (limit): images/s": limit,
        "shared: models' share of the limit": len(MODELS) * images_per_model / shared_s / limit,
    }
    report(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
