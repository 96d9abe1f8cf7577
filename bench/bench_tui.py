"""ffdv-tui in a pseudo-terminal: time to the first frame, and key-press-to-screen latency while training.

The app runs in a pty at 100x30; its output is fed to pyte (a terminal emulator), so
"on screen" means what a terminal would show. Latency: press ``?`` and time until
the keys screen is drawn, ``?`` again until it is gone, an arrow key until the next
run is shown (header, curves, table and log redrawn), many times over, while
an engine trains on every core and a 100-epoch FFDI-sized run log is in the runs
folder (replayed and followed by the app).

    python bench/bench_tui.py [--presses 40]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import pyte

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_runstore import long_run_events, write_log  # noqa: E402
from report import report  # noqa: E402

from engine.contract.config import load_config, save_config  # noqa: E402
from engine.contract.launch import stop_engine, wait_for  # noqa: E402
from engine.contract.runstore import RunPaths  # noqa: E402

COLS, ROWS = 100, 30


class Terminal:
    """A child process in a pty, and the screen it draws."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.started = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:
            os.execvpe(argv[0], argv, env)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.pid, self.fd = pid, fd

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def _read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(self.fd, 1 << 16)
        except OSError:
            return b""
        if b"\x1b[6n" in data:  # answer cursor-position queries, as a real terminal does
            os.write(self.fd, f"\x1b[{self.screen.cursor.y + 1};{self.screen.cursor.x + 1}R".encode())
        return data

    def wait_for(self, predicate, timeout: float) -> float:
        """Seconds from now until the output that makes predicate(screen text) true had arrived.

        Output is read as it comes, with its arrival time, and handed to the emulator only
        when the app falls quiet: the emulator's own parsing (slow, pure Python) is not counted.
        """
        start = time.perf_counter()
        chunks: list[tuple[float, bytes]] = []
        while time.perf_counter() - start < timeout:
            data = self._read(0.002)
            if data:
                chunks.append((time.perf_counter(), data))
                continue
            if chunks and time.perf_counter() - chunks[-1][0] > 0.03:
                matched = None
                for arrived, chunk in chunks:  # every chunk is fed, so the screen stays whole for the next wait
                    self.stream.feed(chunk)
                    if matched is None and predicate(self.text()):
                        matched = arrived - start
                chunks.clear()
                if matched is not None:
                    return matched
            elif not chunks and predicate(self.text()):
                return time.perf_counter() - start
        raise TimeoutError(f"screen never matched; it shows:\n{self.text()}")

    def press(self, key: bytes) -> None:
        os.write(self.fd, key)

    def close(self) -> None:
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def press_keys(term: Terminal, presses: int) -> dict[str, list[float]]:
    """Seconds from each key press until its effect is on the screen, by kind of key."""
    kinds: dict[str, list[float]] = {"open the keys screen": [], "close it": [], "show another run": []}
    for i in range(presses):
        term.press(b"?")  # the keys screen opens over the workbench
        kinds["open the keys screen"].append(term.wait_for(lambda s: "Everywhere" in s, 10))
        term.press(b"?")  # and closes again
        kinds["close it"].append(term.wait_for(lambda s: "Everywhere" not in s, 10))
        header = term.text().splitlines()[0]
        term.press(b"\x1b[B" if i % 2 == 0 else b"\x1b[A")  # another run: header, curves, table, log
        kinds["show another run"].append(term.wait_for(lambda s, h=header: s.splitlines()[0] != h, 10))
        time.sleep(0.05)
    return kinds


def big_run(runs: Path) -> None:
    """A finished 100-epoch FFDI-sized run (27k events) for the app to replay and draw."""
    paths = RunPaths(runs / "ffdi-100-epochs")
    paths.root.mkdir(parents=True)
    config = load_config(overrides={"data.root": "/data/ffdi", "model.name": "efficientnet_b1"})
    save_config(paths, config)
    write_log(paths.events, long_run_events(100, 8194, 250, 18))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=40)
    parser.add_argument("--json", type=Path, default=REPO / ".bench" / "tui.json")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    tmp = Path(tempfile.mkdtemp(prefix="ffdv-bench-tui-"))
    runs = tmp / "runs"
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS),
           "XDG_CACHE_HOME": str(tmp / "cache")}
    results: dict[str, float | str] = {}
    try:
        # 1. First frame, empty runs folder.
        firsts = []
        for _ in range(3):
            term = Terminal([str(bin_dir / "ffdv-tui"), "--runs", str(runs)], env)
            firsts.append(term.wait_for(lambda s: "New run" in s and "No runs" in s, 30))
            term.close()
        results["first frame, s (median of 3)"] = statistics.median(firsts)

        # 2. The same keys on an idle machine (the floor: the app's own drawing), two finished runs to switch between.
        big_run(runs)
        shutil.copytree(runs / "ffdi-100-epochs", runs / "ffdi-100-epochs-copy")
        term = Terminal([str(bin_dir / "ffdv-tui"), "--runs", str(runs)], env)
        term.wait_for(lambda s: "ffdi-100-epochs" in s and "New run" in s, 60)
        time.sleep(1)
        idle = [v for values in press_keys(term, args.presses).values() for v in values]
        term.close()
        results["key-press to screen, idle machine, p50 / p95 ms"] = (
            f"{percentile(idle, 0.5) * 1000:.0f} / {percentile(idle, 0.95) * 1000:.0f}")

        # 3. Busy machine: an engine training on every core, and a long run log to replay.
        train = subprocess.run([str(bin_dir / "ffdv"), "train", "--data", str(REPO / "sample_data"), "--runs",
                                str(runs), "--name", "training", "--epochs", "50", "--detach"],
                               capture_output=True, text=True, env=env, timeout=120)
        if train.returncode != 0:
            raise SystemExit(train.stderr)
        training = RunPaths(runs / "training")
        term = Terminal([str(bin_dir / "ffdv-tui"), "--runs", str(runs)], env)
        results["first frame with a 100-epoch FFDI log, s"] = term.wait_for(
            lambda s: "ffdi-100-epochs" in s and "New run" in s, 60)
        term.wait_for(lambda s: "▶ training" in s, 120)  # the engine is up and stepping
        time.sleep(3)
        kinds = press_keys(term, args.presses)
        latencies = [v for values in kinds.values() for v in values]
        for kind, values in kinds.items():
            results[f"{kind}, p50 / p95 ms"] = f"{percentile(values, 0.5) * 1000:.0f} / {percentile(values, 0.95) * 1000:.0f}"
        term.close()
        results["key-press to screen while training, p50 ms"] = percentile(latencies, 0.5) * 1000
        results["key-press to screen while training, p95 ms"] = percentile(latencies, 0.95) * 1000
        results["key-press to screen while training, max ms"] = max(latencies) * 1000
        stop_engine(training)
        wait_for(lambda: (training.root / "exit.json").exists(), 60)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
