"""How long the queue runner takes to start the next queued run after one ends.

Queues N tiny runs (test_resnet, 32 px, one epoch, a few images) and serves them with
``ffdv queue run --until-empty``; for each pair it reports the time from the first run's
``run_finished`` event to the next run's ``engine.json`` (the supervisor started) and to
its ``run_started`` event (the engine has built its model and data and begun).

    python bench/bench_queue.py --runs 4 [--work DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def event_time(run: Path, kind: str) -> float:
    for line in (run / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("kind") == kind:
            return float(event["time"])
    raise ValueError(f"{run}: no {kind} event")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=4, metavar="N", help="runs to queue (default: %(default)s)")
    parser.add_argument("--work", type=Path, metavar="DIR", help="working folder (default: a temporary one)")
    args = parser.parse_args()
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    from conftest import write_ffdi

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-queue-"))
    data = write_ffdi(work / "data", {"train": 8, "val": 4}, size=32)
    runs = work / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    names = [f"q{i}" for i in range(args.runs)]
    for name in names:
        subprocess.run([sys.executable, "-m", "engine", "train", "--data", str(data), "--runs", str(runs), "--model",
                        "test_resnet", "--img-size", "32", "--epochs", "1", "--batch-size", "4", "--workers", "0",
                        "--name", name, "--queue"], check=True, env=env, capture_output=True)
    subprocess.run([sys.executable, "-m", "engine", "queue", "run", "--runs", str(runs), "--until-empty"], check=True,
                   env=env)
    to_engine, to_started = [], []
    for before, after in itertools.pairwise(names):
        ended = event_time(runs / before, "run_finished")
        to_engine.append(json.loads((runs / after / "engine.json").read_text())["started"] - ended)
        to_started.append(event_time(runs / after, "run_started") - ended)
    print(f"run_finished -> next engine.json:  median {statistics.median(to_engine):.2f} s  "
          f"(each: {', '.join(f'{t:.2f}' for t in to_engine)})")
    print(f"run_finished -> next run_started:  median {statistics.median(to_started):.2f} s  "
          f"(each: {', '.join(f'{t:.2f}' for t in to_started)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
