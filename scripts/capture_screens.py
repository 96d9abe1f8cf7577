"""Plain-text captures of the app's main screens in a real terminal (tmux), for the docs.

    python scripts/capture_screens.py [--size 120x36] [--runs RUNS] [--out docs/captures]

Without --runs it copies the recorded runs of tests/fixtures/runs into a temporary folder
(pointed at this checkout's sample_data) so the captures show the same runs every time.
Each screen is written to OUT/<screen>.txt exactly as tmux shows it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURE_RUNS = REPO / "tests" / "fixtures" / "runs"
SAMPLE_DATA = REPO / "sample_data"

# (file name, keys from the workbench with the finished run selected, text that shows the screen is drawn)
SCREENS = [
    ("workbench", [], "3/3"),
    ("keys", ["?"], "closes this list"),
    ("predictions", ["v"], "128 shown"),
    ("dataset", ["d"], "scan done"),
    ("checkpoints", ["k"], "epoch-003"),
    ("new_run", ["n"], lambda s: "384 train" in s and "loading timm" not in s),
]


def copy_fixture_runs(target: Path) -> Path:
    """The recorded runs, with stand-in weights (4 KB of zeros) beside their checkpoint sidecars, in a folder
    that also holds a link to this checkout's sample_data (the runs name it relatively, so the screens show
    short paths)."""
    runs = Path(shutil.copytree(FIXTURE_RUNS, target))
    (runs.parent / "sample_data").symlink_to(SAMPLE_DATA)
    for sidecar in runs.glob("*/checkpoints/*.json"):
        if sidecar.name == "index.json":
            continue
        weights = sidecar.with_suffix(".safetensors")
        weights.write_bytes(bytes(4096))
        if json.loads(sidecar.read_text()).get("is_best"):
            (sidecar.parent / "best.safetensors").unlink(missing_ok=True)
            (sidecar.parent / "best.safetensors").symlink_to(weights.name)
    return runs


class Terminal:
    """ffdv-tui in a detached tmux session of a fixed size."""

    def __init__(self, socket: str, width: int, height: int, args: str, cwd: Path) -> None:
        self.base = ["tmux", "-L", socket]
        app = Path(sys.executable).parent / "ffdv-tui"
        env = f"PYTHONPATH={shlex.quote(str(REPO))} " if os.environ.get("PYTHONPATH") else ""
        command = f"env -u COLUMNS -u LINES {env}TERM=xterm-256color {shlex.quote(str(app))} {args}; sleep 60"
        subprocess.run([*self.base, "kill-server"], capture_output=True)
        subprocess.run([*self.base, "-f", "/dev/null", "new-session", "-d", "-s", "app", "-x", str(width),
                        "-y", str(height), "-c", str(cwd), command], check=True)

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "app", *keys], check=True)

    def screen(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p", "-t", "app"], capture_output=True,
                              text=True).stdout

    def wait_for(self, text, timeout: float = 90.0) -> str:
        """The screen once ``text`` is on it (or ``text(screen)`` holds)."""
        ready = text if callable(text) else lambda screen: text in screen
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if ready(screen):
                time.sleep(1.0)  # the throttled repaints (curves, log) catch up
                return self.screen()
            time.sleep(0.3)
        print(f"warning: {text!r} never appeared; capturing the screen as it is", file=sys.stderr)
        return self.screen()

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


def capture(runs: Path, out: Path, width: int, height: int) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, keys, ready in SCREENS:
        data = "sample_data" if (runs.parent / "sample_data").exists() else shlex.quote(str(SAMPLE_DATA))
        terminal = Terminal(f"ffdv-capture-{os.getpid()}", width, height,
                            f"--runs {shlex.quote(runs.name)} --data {data}", runs.parent)
        try:
            terminal.wait_for("finished")
            terminal.keys("End")  # the run list is newest first: the finished run is last
            terminal.wait_for("ffdv-tui — finished")
            if keys:
                terminal.keys(*keys)
            screen = terminal.wait_for(ready)
        finally:
            terminal.close()
        path = out / f"{name}.txt"
        path.write_text("\n".join(line.rstrip() for line in screen.rstrip("\n").splitlines()) + "\n")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="120x36", help="WIDTHxHEIGHT of the terminal (default 120x36)")
    parser.add_argument("--runs", type=Path, help="a runs folder (default: a copy of the recorded test runs)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "captures")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs or copy_fixture_runs(Path(tmp) / "runs")
        for path in capture(runs.resolve(), args.out, width, height):
            print(path)


if __name__ == "__main__":
    main()
