"""Where ffdv-tui spends its time: cProfile of the real app in a pseudo-terminal, start-up and key presses apart.

Relative costs and call counts hold on a busy machine, where wall-clock numbers do not.
The app runs under cProfile (``bench/profiled_app.py``); profiling starts at once for
``startup`` (import to first frame, then it quits) or, for ``keys``, once the runs are
listed (SIGUSR1), after which ``?``, ``?`` and an arrow key are pressed ``--presses``
times. The top functions by cumulative and by own time are printed.

    python bench/profile_tui.py startup [--runs-kind empty|ffdi|many]
    python bench/profile_tui.py keys [--presses 30]
"""

from __future__ import annotations

import argparse
import os
import pstats
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from bench_tui import Terminal, big_run, many_runs, press_keys  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("startup", "keys"))
    parser.add_argument("--runs-kind", choices=("empty", "ffdi", "many"), default="ffdi")
    parser.add_argument("--presses", type=int, default=30)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=REPO / ".bench" / "tui.prof")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ffdv-profile-tui-"))
    runs = tmp / "runs"
    runs.mkdir()
    if args.runs_kind == "ffdi" or args.what == "keys":
        big_run(runs)
        shutil.copytree(runs / "ffdi-100-epochs", runs / "ffdi-100-epochs-copy")
    if args.runs_kind == "many":
        many_runs(runs, 200)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TERM": "xterm-256color", "XDG_CACHE_HOME": str(tmp / "cache"),
           "FFDV_PROFILE": str(args.out), "FFDV_PROFILE_WAIT": "1" if args.what == "keys" else ""}
    argv = [sys.executable, str(REPO / "bench" / "profiled_app.py"), "--runs", str(runs)]
    try:
        term = Terminal(argv, env)
        listed = (lambda s: "No runs" in s) if args.runs_kind == "empty" and args.what == "startup" else (
            lambda s: "ffdi-100-epochs" in s or "run-199" in s)
        first = term.wait_for(lambda s: "New run" in s and listed(s), 120)
        print(f"first frame after {first:.2f} s (under the profiler)")
        if args.what == "keys":
            time.sleep(1)
            os.kill(term.pid, signal.SIGUSR1)
            time.sleep(0.2)
            press_keys(term, args.presses)
        term.press(b"q")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            term._read(0.05)
            pid, _ = os.waitpid(term.pid, os.WNOHANG)
            if pid:
                break
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    stats = pstats.Stats(str(args.out))
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
