"""The run store at scale: replaying long logs, and what writing events costs the engine.

1. A log of 1,000,000 events (mostly steps): how long a viewer takes to replay it
   into a RunState, and into typed events.
2. A realistic long run: 100 epochs over FFDI's 524,429 training images (batch 64,
   8,194 steps an epoch) with step events coalesced as the engine does it
   (engine/train.py: at most one a second and about 250 an epoch), a heartbeat every
   10 s, a validation each epoch: its size on disk and its replay time.
3. Writing: microseconds per event, and that cost as a share of training time for the
   events a real run writes per second.

    python bench/bench_runstore.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from report import report  # noqa: E402

from engine.contract.protocol import (  # noqa: E402
    CheckpointSaved,
    EpochEnded,
    Heartbeat,
    PredictionsWritten,
    RunStarted,
    Step,
    Validated,
    encode_event,
)
from engine.contract.runstate import load_run  # noqa: E402
from engine.contract.runstore import EventWriter, read_events  # noqa: E402

FFDI_TRAIN = 524_429
METRICS = {"auc": 0.912345, "ap": 0.901234, "accuracy": 0.85, "precision": 0.84, "recall": 0.86, "f1": 0.85,
           "eer": 0.12, "tpr_at_fpr_1e-3": 0.31, "loss": 0.34, "confusion": [[60000, 9000], [8000, 70000]],
           "count": 147363, "positives": 78000, "threshold": 0.5}


def step(seq: int, epoch: int, i: int, steps_per_epoch: int) -> Step:
    event = Step(epoch=epoch, step=epoch * steps_per_epoch + i, epoch_step=i, steps_per_epoch=steps_per_epoch,
                 loss=0.693147, lr=0.000123457, images_per_sec=3012.5)
    event.seq, event.time = seq, 1795900000.123 + seq
    return event


def long_run_events(epochs: int, steps_per_epoch: int, step_events: int, heartbeats: int):
    """The events of a long run, in order, with the engine's coalescing."""
    config = {"data": {"root": "/data/ffdi", "img_size": 224}, "model": {"name": "efficientnet_b1"},
              "train": {"epochs": epochs, "batch_size": 64, "best_metric": "auc"}}
    yield RunStarted(run_id="ffdi", config=config, model="efficientnet_b1", device="cuda:0 (NVIDIA H200), bf16",
                     epochs=epochs, steps_per_epoch=steps_per_epoch, num_train=FFDI_TRAIN, num_val=147363)
    every = steps_per_epoch // step_events
    for epoch in range(epochs):
        for k in range(step_events):
            yield step(0, epoch, min(steps_per_epoch, (k + 1) * every), steps_per_epoch)
            if k % (step_events // heartbeats) == 0:
                yield Heartbeat(device="cuda:0", memory_used=41 << 30, memory_total=141 << 30, utilization=97.0)
        yield EpochEnded(epoch=epoch, train_loss=0.3, duration_s=180.0, images_per_sec=2913.4)
        yield Validated(epoch=epoch + 1, metrics=METRICS, num_images=147363, best_metric="auc", is_best=True)
        yield PredictionsWritten(epoch=epoch + 1, path=f"predictions/epoch-{epoch + 1:03d}.csv", count=147363)
        yield CheckpointSaved(epoch=epoch + 1, step=0, path=f"checkpoints/epoch-{epoch + 1:03d}.safetensors",
                              reason="epoch", is_best=True, metric_value=0.91)


def write_log(path: Path, events) -> int:
    count = 0
    with open(path, "w") as fh:
        for seq, event in enumerate(events, 1):
            event.seq, event.time = seq, round(1795900000.0 + seq * 0.5, 3)
            fh.write(encode_event(event))
            count += 1
    return count


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, default=REPO / ".bench" / "runstore.json")
    args = parser.parse_args()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = tmp / "big.jsonl"
        steps_per_epoch = 8194
        epochs = args.events // 260 + 1
        events = (e for i, e in zip(range(args.events), long_run_events(epochs, steps_per_epoch, 250, 10)))
        n = write_log(big, events)
        results["1M: events"] = n
        results["1M: MB"] = big.stat().st_size / 1e6
        seconds, state = timed(lambda: load_run_from(big))
        results["1M: replay into RunState, s"] = seconds
        results["1M: loss-curve points kept"] = len(state.loss.points()[0])
        seconds, _typed = timed(lambda: read_events(big), repeat=1)
        results["1M: replay as typed events, s"] = seconds

        ffdi = tmp / "ffdi.jsonl"
        # 100 epochs; 8,194 steps an epoch at ~47 steps/s is ~175 s: ~175 step events (time rule) and
        # at most 8194 // 250 -> 256 (step rule); 250 taken, the upper end. A heartbeat each 10 s: ~18.
        n = write_log(ffdi, long_run_events(100, steps_per_epoch, 250, 18))
        results["FFDI 100 epochs: events"] = n
        results["FFDI 100 epochs: MB"] = ffdi.stat().st_size / 1e6
        results["FFDI 100 epochs: replay into RunState, s"] = timed(lambda: load_run_from(ffdi))[0]

        writer = EventWriter(tmp / "write.jsonl")
        count = 20_000
        start = time.perf_counter()
        for i in range(count):
            writer.emit(Step(epoch=0, step=i, epoch_step=i, steps_per_epoch=count, loss=0.69, lr=1e-3,
                             images_per_sec=100.0))
        per_event = (time.perf_counter() - start) / count
        writer.close()
        results["write: µs per event"] = per_event * 1e6
        # A run writes at most ~1.3 events a second (steps at 1/s, heartbeats at 1/10 s, a few per epoch).
        results["write: share of training time, %"] = per_event * 1.3 * 100
    report(results, args.json)
    return 0


def load_run_from(log: Path):
    """load_run reads RUN/events.jsonl; point a throwaway run folder at the log."""
    run = log.parent / f"run-{log.stem}"
    run.mkdir(exist_ok=True)
    target = run / "events.jsonl"
    if not target.exists():
        os.symlink(log, target)
    return load_run(run)


if __name__ == "__main__":
    sys.exit(main())
