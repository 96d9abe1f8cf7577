"""ffdv-tui in a pseudo-terminal: time to the first frame, and key-press-to-screen latency, idle and while training.

The app runs in a pty at 100x30; its output is fed to pyte (a terminal emulator), so
"on screen" means what a terminal would show. First frame: the median of ``--startups``
start-ups with an empty runs folder, with a 100-epoch FFDI-sized run log, and with 200
runs. Latency: press ``?`` and time until the keys screen is drawn, ``?`` again until it
is gone, an arrow key until another run is shown (header, curves, table and log
redrawn), ``--presses`` times each, on an idle machine and while an engine trains on
every core, with the two FFDI-sized runs and again with 200 runs more. The load average
is printed before and after each part, with the time of a fixed piece of Python work (a
virtual machine whose host is busy is slower without a higher load): a number taken on a
busy or slowed machine says so. The app's own CPU time (at the first frame; per key press
over a part) is printed too: it is the work done, which a busy machine slows but does
not change, so builds can be compared under a load that makes their wall-clock times noisy.

    python bench/bench_tui.py [--presses 200] [--startups 5]     # about 5 minutes
    python bench/bench_tui.py --presses 3 --startups 1 --runs 5 --no-training --settle 0.2 --epochs 3   # smoke
"""

from __future__ import annotations

import argparse
import fcntl
import os
import platform
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
        # cells of 10x20 pixels, as a terminal emulator reports them (textual-image reads its cell size from this)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, COLS * 10, ROWS * 20))
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
        if b"\x1b[c" in data:  # and device-attribute queries, as xterm does (no sixel); kitty's graphics go unanswered
            os.write(self.fd, b"\x1b[?62;22c")
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

    def cpu_seconds(self) -> float:
        """CPU time the app has used so far, all its threads (user + system): work done, which the load does not change."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

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
        kinds["open the keys screen"].append(term.wait_for(lambda s: "On this screen" in s, 10))
        term.press(b"?")  # and closes again
        kinds["close it"].append(term.wait_for(lambda s: "On this screen" not in s, 10))
        header = term.text().splitlines()[0]
        term.press(b"\x1b[B" if i % 2 == 0 else b"\x1b[A")  # another run: header, curves, table, log
        kinds["show another run"].append(term.wait_for(lambda s, h=header: s.splitlines()[0] != h, 10))
        time.sleep(0.02)
    return kinds


def big_run(runs: Path, epochs: int = 100) -> None:
    """A finished 100-epoch FFDI-sized run (27k events) for the app to replay and draw."""
    paths = RunPaths(runs / "ffdi-100-epochs")
    paths.root.mkdir(parents=True)
    config = load_config(overrides={"data.root": "/data/ffdi", "model.name": "efficientnet_b1"})
    save_config(paths, config)
    write_log(paths.events, long_run_events(epochs, 8194, 250, 18))


def many_runs(runs: Path, count: int) -> None:
    """``count`` finished 10-epoch runs (each a few hundred events), as a shared GPU box collects them."""
    config = load_config(overrides={"data.root": "/data/ffdi", "model.name": "resnet50"})
    for i in range(count):
        paths = RunPaths(runs / f"run-{i:03d}")
        paths.root.mkdir(parents=True)
        save_config(paths, config)
        write_log(paths.events, long_run_events(10, 500, 25, 5))


def python_speed_ms() -> float:
    """A fixed piece of pure-Python work, timed: this machine's speed now (a shared VM's varies by a third).

    The load average misses a neighbour on the same host; this does not. Compare a number only
    with others taken at about the same speed.
    """
    start = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i
    return (time.perf_counter() - start) * 1000


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores"


class Bench:
    def __init__(self, bin_dir: Path, env: dict[str, str]):
        self.bin_dir, self.env = bin_dir, env
        self.results: dict[str, float | str] = {"machine": machine()}
        self.loads: list[float] = []
        self.speeds: list[float] = []

    def note_load(self, when: str) -> None:
        self.loads.append(os.getloadavg()[0])
        self.speeds.append(python_speed_ms())
        print(f"load average (1 / 5 / 15 min) {when}: {load()}; reference Python work {self.speeds[-1]:.0f} ms",
              flush=True)

    def app(self, runs: Path) -> Terminal:
        return Terminal([str(self.bin_dir / "ffdv-tui"), "--runs", str(runs)], self.env)

    def first_frames(self, label: str, runs: Path, shown, count: int) -> None:
        times, cpu = [], []
        for _ in range(count):
            term = self.app(runs)
            times.append(term.wait_for(lambda s: "New run" in s and shown(s), 60))
            cpu.append(term.cpu_seconds())  # read once the screen fell quiet, 30 ms after the first frame
            term.close()
        self.results[f"first frame, {label}, s (median)"] = statistics.median(times)
        self.results[f"first frame, {label}, each, s"] = " ".join(f"{t:.2f}" for t in times)
        self.results[f"first frame, {label}, app CPU s (median)"] = statistics.median(cpu)
        self.note_load(f"after the first frames, {label}")

    def keys(self, label: str, runs: Path, shown, presses: int, settle: float) -> None:
        term = self.app(runs)
        term.wait_for(lambda s: "New run" in s and shown(s), 120)
        time.sleep(settle)  # every run read, the first repaints done
        cpu = term.cpu_seconds()
        kinds = press_keys(term, presses)
        cpu = term.cpu_seconds() - cpu
        term.close()
        every = [v for values in kinds.values() for v in values]
        slowest, slowest_kind, number = max((v, kind, i + 1) for kind, values in kinds.items() for i, v in enumerate(values))
        self.results[f"key press, {label}, p50 / p95 / max ms"] = (
            f"{percentile(every, 0.5) * 1000:.0f} / {percentile(every, 0.95) * 1000:.0f} / {slowest * 1000:.0f}")
        self.results[f"key press, {label}, p50 ms"] = percentile(every, 0.5) * 1000
        self.results[f"key press, {label}, p95 ms"] = percentile(every, 0.95) * 1000
        self.results[f"key press, {label}, max ms"] = slowest * 1000
        self.results[f"key press, {label}, the slowest"] = f"{slowest_kind}, press {number} of {presses}"
        self.results[f"key press, {label}, app CPU ms per press (mean)"] = cpu * 1000 / len(every)
        for kind, values in kinds.items():
            self.results[f"  {kind}, {label}, p50 / p95 ms"] = (
                f"{percentile(values, 0.5) * 1000:.0f} / {percentile(values, 0.95) * 1000:.0f}")
        self.note_load(f"after the key presses, {label}")

    def train(self, runs: Path) -> RunPaths:
        """An engine training on every core (the sample data, 50 epochs: longer than the benchmark)."""
        name = f"training-{len(list(runs.iterdir()))}"
        train = subprocess.run([str(self.bin_dir / "ffdv"), "train", "--data", str(REPO / "sample_data"), "--runs",
                                str(runs), "--name", name, "--epochs", "50", "--detach"],
                               capture_output=True, text=True, env=self.env, timeout=120)
        if train.returncode != 0:
            raise SystemExit(train.stderr)
        paths = RunPaths(runs / name)
        wait_for(lambda: any('"kind": "step"' in line or '"kind":"step"' in line
                             for line in paths.events.read_text().splitlines()) if paths.events.exists() else False,
                 180)
        return paths


def stop(paths: RunPaths) -> None:
    stop_engine(paths)
    wait_for(lambda: (paths.root / "exit.json").exists(), 60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=200, help="presses of each key per part (default 200)")
    parser.add_argument("--startups", type=int, default=5, help="start-ups per runs folder (default 5)")
    parser.add_argument("--runs", type=int, default=200, help="runs in the crowded runs folder (default 200)")
    parser.add_argument("--no-training", action="store_true", help="skip the parts with an engine training")
    parser.add_argument("--epochs", type=int, default=100, help="epochs of the two FFDI-sized runs (default 100)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between start-up and the first key press")
    parser.add_argument("--json", type=Path, default=REPO / ".bench" / "tui.json")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    tmp = Path(tempfile.mkdtemp(prefix="ffdv-bench-tui-"))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS),
           "XDG_CACHE_HOME": str(tmp / "cache")}
    bench = Bench(bin_dir, env)
    bench.note_load("at the start")
    bench.results["start-ups per runs folder / presses per key"] = f"{args.startups} / {args.presses}"
    bench.results["many runs"] = f"{args.runs} runs of 10 epochs, and the two 100-epoch FFDI runs"
    empty, two, crowded = tmp / "empty", tmp / "two", tmp / "crowded"
    empty.mkdir()
    big_run(two, args.epochs)
    shutil.copytree(two / "ffdi-100-epochs", two / "ffdi-100-epochs-copy")
    shutil.copytree(two, crowded, dirs_exist_ok=True)
    many_runs(crowded, args.runs)
    newest = f"run-{args.runs - 1:03d}"
    trainings: list[RunPaths] = []
    try:
        bench.first_frames("empty runs folder", empty, lambda s: "No runs" in s, args.startups)
        bench.first_frames("100-epoch FFDI log", two, lambda s: "ffdi-100-epochs" in s, args.startups)
        bench.first_frames("many runs", crowded, lambda s: newest in s, args.startups)

        bench.keys("idle", two, lambda s: "ffdi-100-epochs" in s, args.presses, args.settle)
        bench.keys("idle, many runs", crowded, lambda s: newest in s, args.presses, args.settle)
        for label, runs in (("while training", two), ("while training, many runs", crowded)):
            if args.no_training:
                break
            trainings.append(bench.train(runs))
            bench.keys(label, runs, lambda s: "▶ training" in s, args.presses, args.settle)
            stop(trainings.pop())
    finally:
        for paths in trainings:
            stop(paths)
        shutil.rmtree(tmp, ignore_errors=True)
    bench.results["load average, 1 min, lowest / highest seen"] = f"{min(bench.loads):.1f} / {max(bench.loads):.1f}"
    bench.results["reference Python work, ms, fastest / slowest seen"] = (
        f"{min(bench.speeds):.0f} / {max(bench.speeds):.0f}")
    report(bench.results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
