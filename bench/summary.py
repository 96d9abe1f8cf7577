"""The one table `make bench` ends with: every benchmark's headline numbers, read from .bench/*.json.

    python bench/summary.py [--dir .bench]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def rows(found: dict[str, dict]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    engine = found.get("engine")
    if engine:
        out.append(("machine", engine["machine"]))
        for kind in ("train", "predict"):
            rate = engine["images_per_sec"][kind]
            out.append((f"{kind}: engine / plain loop / limit, images/s",
                        f"{rate['engine']:.1f} / {rate['plain loop']:.1f} / {rate['limit']:.1f}"))
            out.append((f"{kind}: engine / plain loop, engine / limit",
                        f"{rate['engine'] / rate['plain loop']:.2f}x, {rate['engine'] / rate['limit']:.2f}x"))
    store = found.get("runstore")
    if store:
        out.append(("event write, µs (share of training time)",
                    f"{store['write: µs per event']:.1f} ({store['write: share of training time, %']:.4f}%)"))
        out.append(("replay of 1M events into a run summary, s", f"{store['1M: replay into RunState, s']:.2f}"))
    tui = found.get("tui")
    if tui:
        out.append(("ffdv-tui first frame, empty / FFDI / 200 runs, s",
                    " / ".join(f"{tui[f'first frame, {what}, s (median)']:.2f}"
                               for what in ("empty runs folder", "100-epoch FFDI log", "many runs"))))
        out.append(("key press to screen, idle, p50 / p95 ms",
                    f"{tui['key press, idle, p50 ms']:.0f} / {tui['key press, idle, p95 ms']:.0f}"))
        if "key press, while training, p95 ms" in tui:
            out.append(("key press while training, p50 / p95 / max ms",
                        f"{tui['key press, while training, p50 ms']:.0f} / "
                        f"{tui['key press, while training, p95 ms']:.0f} / {tui['key press, while training, max ms']:.0f}"))
    scale = found.get("scale")
    if scale:
        out.append(("1M-row label file: parse and check, s",
                    f"{scale['label file of 1,000,000 rows: parse and check, s']:.2f}"))
        out.append(("150k predictions: open / slowest filter + sort, s",
                    f"{scale['150,000 predictions: open, s']:.3f} / "
                    f"{scale['filter + sort, slowest of all combinations, s']:.3f}"))
        out.append(("2 gloo processes / 1 process, training images/s", f"{scale['2 processes / 1 process']:.2f}x"))
    matrix = found.get("matrix")
    if matrix:
        out.append(("matrix 3 ckpt x 2 data x standard: vs evaluate per cell / shared decode alone",
                    f"{matrix['speed-up over evaluate per cell']:.2f}x / {matrix['speed-up of the shared decode alone']:.2f}x"))
        out.append(("matrix images/s per model / model alone (limit)",
                    f"{matrix['in process shared: images/s per model']:.1f} / {matrix['model alone (limit): images/s']:.1f}"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=REPO / ".bench")
    args = parser.parse_args()
    found = {}
    for name in ("engine", "runstore", "tui", "scale", "matrix"):
        path = args.dir / f"{name}.json"
        if path.is_file():
            found[name] = json.loads(path.read_text())
        else:
            print(f"{path}: missing (its benchmark did not run)", file=sys.stderr)
    table = rows(found)
    if not table:
        return 1
    width = max(len(what) for what, _ in table)
    print()
    for what, value in table:
        print(f"{what:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
