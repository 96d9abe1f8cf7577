"""Time to open a comparison of 10 runs of 100 epochs: headless (``ffdv compare``'s work) and in the app.

Synthetic run folders, FFDI-sized: 100 epochs of 250 coalesced step events each (about 27k
events a run, as ``bench_runstore.long_run_events``), a validation a epoch with metrics that
move, and the best validation's per-image predictions (``--images`` rows, FFDI's validation
split by default). Headless: summarize, compare, table and ROC curves. App: from the key ``m``
to the comparison screen drawn with every curve, the table and the ROC curves (Pilot, 200x60).

    python bench/bench_compare.py [--runs 10] [--epochs 100] [--images 147363] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests")]

from bench_runstore import step, write_log  # noqa: E402

from engine.contract.config import load_config, save_config  # noqa: E402
from engine.contract.protocol import EpochEnded, Heartbeat, PredictionsWritten, RunFinished, RunStarted, Validated  # noqa: E402
from engine.contract.runstore import RunPaths  # noqa: E402

STEPS_PER_EPOCH, STEP_EVENTS, HEARTBEATS, FFDI_TRAIN = 8194, 250, 18, 524_429


def run_events(index: int, epochs: int):
    config = {"data": {"root": "/data/ffdi"}, "model": {"name": "efficientnet_b1"},
              "optim": {"lr": 1e-3 * (index + 1)}, "train": {"epochs": epochs, "seed": index, "best_metric": "auc"}}
    yield RunStarted(run_id=f"run-{index}", config=config, model="efficientnet_b1", device="cuda:0", epochs=epochs,
                     steps_per_epoch=STEPS_PER_EPOCH, num_train=FFDI_TRAIN, num_val=147_363)
    every = STEPS_PER_EPOCH // STEP_EVENTS
    best = -1.0
    for epoch in range(epochs):
        for k in range(STEP_EVENTS):
            yield step(0, epoch, min(STEPS_PER_EPOCH, (k + 1) * every), STEPS_PER_EPOCH)
            if k % (STEP_EVENTS // HEARTBEATS) == 0:
                yield Heartbeat(device="cuda:0", memory_used=41 << 30, memory_total=141 << 30, utilization=97.0)
        loss = 0.6 * math.exp(-epoch / (20 + index)) + 0.05
        yield EpochEnded(epoch=epoch, train_loss=loss, duration_s=180.0, images_per_sec=2900.0 + index)
        auc = 0.99 - 0.4 * math.exp(-epoch / (15 + 2 * index)) - 0.0004 * max(0, epoch - 60)  # peaks, then drops
        metrics = {"auc": auc, "ap": auc - 0.01, "accuracy": auc - 0.05, "f1": auc - 0.06, "eer": 1 - auc,
                   "tpr_at_fpr_1e-3": auc / 2, "loss": loss * 1.1}
        yield Validated(epoch=epoch + 1, metrics=metrics, num_images=147_363, best_metric="auc", is_best=auc > best)
        best = max(best, auc)
        yield PredictionsWritten(epoch=epoch + 1, path=f"predictions/epoch-{epoch + 1:03d}.csv", count=147_363)
    yield RunFinished(status="completed", epochs_completed=epochs, best_metric="auc", best_value=best)


def make_runs(root: Path, count: int, epochs: int, images: int) -> list[Path]:
    rng = np.random.default_rng(0)
    folders = []
    for index in range(count):
        paths = RunPaths(root / f"run-{index:02d}")
        paths.root.mkdir(parents=True)
        save_config(paths, load_config(overrides={"data.root": "/data/ffdi", "optim.lr": 1e-3 * (index + 1),
                                                  "train.seed": index}))
        write_log(paths.events, run_events(index, epochs))
        from engine.contract.runstate import load_run

        best = load_run(paths.root).best_epoch
        paths.predictions.mkdir()
        targets = rng.integers(0, 2, images)
        scores = np.clip(targets * 0.3 + rng.normal(0.35, 0.2, images), 0, 1)
        lines = ["img_name,target,score,pred"] + [f"val{i:06d}.jpg,{t},{s:.6f},{int(s > 0.5)}"
                                                  for i, (t, s) in enumerate(zip(targets, scores))]
        (paths.predictions / f"epoch-{best:03d}.csv").write_text("\n".join(lines) + "\n")
        folders.append(paths.root)
    return folders


def headless(folders: list[Path]) -> tuple[float, float]:
    from engine.contract.compare import compare, compare_table, roc_set
    from engine.contract.runsummary import summarize

    start, cpu = time.perf_counter(), time.process_time()
    comparison = compare([summarize(f) for f in folders])
    compare_table(comparison)
    rocs = roc_set(comparison)
    assert len(rocs.curves) == len(folders), rocs.left_out
    return time.perf_counter() - start, time.process_time() - cpu


async def in_app(runs: Path, count: int) -> tuple[float, float]:
    from pilot_helpers import make_app, wait_until

    from ffdv_tui.screens.compare import CompareScreen

    app = make_app(runs, images="none")
    async with app.run_test(size=(200, 60)) as pilot:
        await wait_until(pilot, lambda: app.main.listed and len(app.main.runs) == count, 300, "every run read")
        await pilot.press("a")
        await wait_until(pilot, lambda: len(app.main.marked) == count, 30, "all marked")
        start, cpu = time.perf_counter(), time.process_time()
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.loaded, 300, "loaded")
        await pilot.pause(0)  # the frame with everything drawn
        await pilot.wait_for_scheduled_animations()
        return time.perf_counter() - start, time.process_time() - cpu


def report(what: str, runs: list[tuple[float, float]]) -> None:
    """Wall-clock time (what a busy machine stretches) and the process's CPU time (the work done, all threads)."""
    wall, cpu = [w for w, _ in runs], [c for _, c in runs]
    print(f"{what}: median {statistics.median(wall):.2f}s wall, {statistics.median(cpu):.2f}s CPU "
          f"(each: {', '.join(f'{w:.2f}/{c:.2f}' for w, c in runs)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--images", type=int, default=147_363, help="rows of each run's best predictions")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        started = time.perf_counter()
        folders = make_runs(runs, args.runs, args.epochs, args.images)
        print(f"made {args.runs} runs of {args.epochs} epochs ({args.images:,} predictions each) "
              f"in {time.perf_counter() - started:.1f}s")
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        report("headless (summaries, table, ROC)", [headless(folders) for _ in range(args.repeat)])
        report("app, m to the comparison drawn", [asyncio.run(in_app(runs, args.runs)) for _ in range(args.repeat)])
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
