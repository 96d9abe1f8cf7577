"""Scale: a 1,000,000-row label file, 150,000 predictions, and 2 training processes (torchrun, gloo) against 1.

    python bench/bench_scale.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from report import report  # noqa: E402

from engine.contract.runstate import load_run  # noqa: E402
from engine.data.dataset import read_label_file  # noqa: E402


def label_file_open(rows: int, tmp: Path) -> dict[str, float]:
    """Parse and check a label file of ``rows`` lines (images need not exist to browse)."""
    path = tmp / "trainset_label.txt"
    with open(path, "w") as fh:
        fh.write("img_name,target\n")
        fh.writelines(f"{i:032x}.jpg,{i % 2}\n" for i in range(rows))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        split = read_label_file(path, tmp / "trainset", check_files=False)
        best = min(best, time.perf_counter() - start)
    assert len(split) == rows
    return {f"label file of {rows:,} rows: parse and check, s": best}


def predictions_table(rows: int, tmp: Path) -> dict[str, float]:
    """FFDI's validation set of predictions: open, then every filter, sort and a search, as the screen does them."""
    import numpy as np
    import pandas as pd

    from ffdv_tui.predictions import FILTERS, SORTS, PredictionTable, load_predictions

    rng = np.random.default_rng(0)
    target = rng.integers(0, 2, rows)
    score = np.clip(rng.normal(0.35 + 0.3 * target, 0.2), 0, 1)
    path = tmp / "epoch-001.csv"
    pd.DataFrame({"img_name": [f"{i:032x}.jpg" for i in range(rows)], "target": target, "score": score.round(6),
                  "pred": (score > 0.5).astype(int)}).to_csv(path, index=False)
    start = time.perf_counter()
    table = PredictionTable(load_predictions(path))
    opened = time.perf_counter() - start
    times = []
    for filter_name in FILTERS:
        for sort in SORTS:
            start = time.perf_counter()
            table.view(0.5, filter_name, sort)
            times.append(time.perf_counter() - start)
    start = time.perf_counter()
    table.view(0.5, "all", "score", "abc")
    searched = time.perf_counter() - start
    return {f"{rows:,} predictions: open, s": opened, "filter + sort, slowest of all combinations, s": max(times),
            "search by name (first, builds the index), s": searched}


def processes(data: Path, tmp: Path) -> dict[str, float]:
    """Images/s of the second epoch with 1 process (batch 32) and with 2 processes (16 each)."""
    out = {}
    for nproc in (1, 2):
        name = f"p{nproc}"
        cmd = [sys.executable, "-m", "engine", "train", "--data", str(data), "--runs", str(tmp), "--name", name,
               "--epochs", "2", "--batch-size", str(32 // nproc), "--img-size", "128", "--workers", "1",
               "--nproc-per-node", str(nproc)]
        subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=True)
        assert load_run(tmp / name).status == "finished"
        out[f"train, {nproc} process{'es' if nproc > 1 else ''}: images/s"] = _epoch_rates(tmp / name)[-1]
    out["2 processes / 1 process"] = out["train, 2 processes: images/s"] / out["train, 1 process: images/s"]
    return out


def _epoch_rates(run: Path) -> list[float]:
    rates = []
    for line in (run / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("kind") == "epoch_ended":
            rates.append(event["images_per_sec"])
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--predictions", type=int, default=150_000)
    parser.add_argument("--data", type=Path, default=REPO / ".bench" / "data-640",
                        help="a dataset (bench/bench_engine.py makes .bench/data-640)")
    parser.add_argument("--json", type=Path, default=REPO / ".bench" / "scale.json")
    args = parser.parse_args()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results.update(label_file_open(args.rows, Path(tmp)))
    with tempfile.TemporaryDirectory() as tmp:
        results.update(predictions_table(args.predictions, Path(tmp)))
    data = args.data if args.data.is_dir() else REPO / "sample_data"
    with tempfile.TemporaryDirectory() as tmp:
        results.update(processes(data, Path(tmp)))
    report(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
