"""`make bench` ends with one table built from the benchmarks' JSON files; a renamed key must not slip by."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

RESULTS = {
    "engine": {"machine": "test box", "images_per_sec": {
        "train": {"engine": 60.0, "plain loop": 50.0, "limit": 75.0},
        "predict": {"engine": 150.0, "plain loop": 100.0, "limit": 200.0}}},
    "runstore": {"write: µs per event": 7.8, "write: share of training time, %": 0.001,
                 "1M: replay into RunState, s": 1.9},
    "tui": {"first frame, empty runs folder, s (median)": 0.8, "first frame, 100-epoch FFDI log, s (median)": 0.9,
            "first frame, many runs, s (median)": 1.0, "key press, idle, p50 ms": 30.0, "key press, idle, p95 ms": 50.0,
            "key press, while training, p50 ms": 36.4, "key press, while training, p95 ms": 92.9,
            "key press, while training, max ms": 200.0},
    "scale": {"label file of 1,000,000 rows: parse and check, s": 0.93, "150,000 predictions: open, s": 0.064,
              "filter + sort, slowest of all combinations, s": 0.028, "2 processes / 1 process": 1.14},
    "matrix": {"speed-up over evaluate per cell": 4.25, "speed-up of the shared decode alone": 1.61,
               "in process shared: images/s per model": 40.5, "model alone (limit): images/s": 300.25},
}


def test_summary_table_has_every_benchmark_with_ratios(tmp_path: Path) -> None:
    for name, values in RESULTS.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(values))
    out = subprocess.run([sys.executable, str(REPO / "bench" / "summary.py"), "--dir", str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert "1.20x, 0.80x" in out  # train: engine / plain, engine / limit
    assert "1.50x, 0.75x" in out  # predict
    assert "36 / 93 / 200" in out and "0.80 / 0.90 / 1.00" in out and "1.14x" in out and "0.93" in out and "test box" in out
    assert "4.25x / 1.61x" in out and "40.5 / 300.2" in out


def test_summary_says_which_benchmark_did_not_run(tmp_path: Path) -> None:
    (tmp_path / "tui.json").write_text(json.dumps(RESULTS["tui"]))
    result = subprocess.run([sys.executable, str(REPO / "bench" / "summary.py"), "--dir", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "engine.json: missing" in result.stderr and "36 / 93" in result.stdout
