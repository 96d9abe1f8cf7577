"""ffdv-tui in a real terminal: tmux runs it at 100x30, the keyboard starts a run, the screen shows it train.

Skipped when tmux is not installed (.ci/run installs it).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SAMPLE_DATA

from engine.contract.launch import engine_alive, wait_for
from engine.contract.runstore import RunPaths, read_events

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")


class Tmux:
    """One tmux server running `ffdv-tui ARGS` in a pane of the given size.

    The app is started by absolute path with its environment set by `env` itself: the pane's shell may read
    startup files (a ~/.bashrc that rewrites PATH) and tmux's own environment may carry COLUMNS/LINES from
    pytest, which would win over the pane's real size.
    """

    def __init__(self, socket: str, width: int, height: int, app_args: str, cwd: Path, cache: Path):
        self.base = ["tmux", "-L", socket]
        app = Path(sys.executable).parent / "ffdv-tui"
        path = f"{app.parent}:{os.environ.get('PATH', '')}"
        command = (f"env -u COLUMNS -u LINES PATH={shlex.quote(path)} XDG_CACHE_HOME={shlex.quote(str(cache))} "
                   f"TERM=xterm-256color {shlex.quote(str(app))} {app_args}; echo ffdv-tui exited $?; sleep 120")
        subprocess.run([*self.base, "kill-server"], capture_output=True)
        subprocess.run([*self.base, "-f", "/dev/null", "new-session", "-d", "-s", "app", "-x", str(width), "-y",
                        str(height), "-c", str(cwd), command], check=True)

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "app", *keys], check=True)

    def screen(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p", "-t", "app"], capture_output=True, text=True).stdout

    def wait_for(self, predicate, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}; the screen was:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


def step_count(screen: str) -> int | None:
    match = re.search(r"step\s+\S+\s+(\d+)/(\d+)", screen)
    return int(match.group(1)) if match else None


@pytest.mark.slow
def test_start_a_run_from_the_keyboard_and_quit_while_it_trains(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    tmux = Tmux(f"ffdv-test-{os.getpid()}", 100, 30, f"--runs {runs} --data {SAMPLE_DATA}", tmp_path,
                tmp_path / "cache")
    try:
        tmux.wait_for(lambda s: "New run" in s and "No runs in" in s, 30, "the empty workbench")
        tmux.keys("n")
        tmux.wait_for(lambda s: re.search(r"Model\s+resnet10t\s+✓", s) is not None, 120,
                      "the form, with the model list loaded")
        tmux.wait_for(lambda s: "Dataset: a dataset folder" in s, 30, "the dataset field's help (it has focus)")
        for label in ("Model", "Image size", "Epochs"):  # each Tab's own answer: the next field's help line
            tmux.keys("Tab")
            tmux.wait_for(lambda s, label=label: re.search(rf"^\W*{label}: .* · \S+\s*\W*$", s, re.M) is not None, 30,
                          f"the {label} field's help")
        tmux.keys("2")  # the epochs text was selected on focus: it becomes 2
        tmux.wait_for(lambda s: re.search(r"Epochs\s+2\s+✓", s) is not None, 60, "epochs = 2")
        tmux.keys("C-s")
        first = tmux.wait_for(lambda s: (step_count(s) or 0) > 0, 90, "the first steps")
        tmux.wait_for(lambda s: (step_count(s) or 0) > step_count(first) or "auc 0." in s, 90, "rising steps")
        screen = tmux.wait_for(lambda s: re.search(r"auc 0\.\d{4}", s) is not None, 120, "an AUC value")
        name = re.search(r"ffdv-tui — (\S+) ·", screen).group(1)
        tmux.keys("q")
        tmux.wait_for(lambda s: "still training" in s, 60, "the quit confirmation")
        tmux.keys("y")
        tmux.wait_for(lambda s: "Left running:" in s, 60, "the goodbye")
    finally:
        tmux.close()
    paths = RunPaths(runs / name)
    assert wait_for(lambda: engine_alive(paths) is False, 180), "the engine did not finish on its own"
    finished = read_events(paths.events)[-1]
    assert finished.kind == "run_finished" and finished.status == "completed" and finished.epochs_completed == 2


@pytest.mark.parametrize(("images", "key"), [("none", "k"), ("none", "v"), ("none", "d"), ("halfcell", "v"),
                                             ("halfcell", "d")])
def test_screens_with_previews_open_without_stray_keys(tmp_path: Path, images: str, key: str) -> None:
    """``--images none`` and ``halfcell``: no terminal question may be asked while the app reads the keyboard.

    textual-image asks the terminal about graphics when it is imported; imported by a screen
    after start-up, the terminal's answer arrived as key presses and a ``?`` in it opened the
    keys screen on top of the one just opened. Half cells import it on first use, asking nothing.
    """
    from conftest import install_fixture_runs

    runs = install_fixture_runs(tmp_path / "runs")
    tmux = Tmux(f"ffdv-{images}-{key}-{os.getpid()}", 120, 36, f"--runs {runs} --data {SAMPLE_DATA} --images {images}",
                tmp_path, tmp_path / "cache")
    try:
        tmux.wait_for(lambda s: "n New" in s and "finished" in s, 60, "the workbench")
        tmux.keys(key)
        tmux.wait_for(lambda s: "esc Back" in s and "n New" not in s, 60, "the screen behind the key")
        tmux.keys("Escape")  # leaves that screen, unless a keys screen opened on top of it
        tmux.wait_for(lambda s: "n New" in s and "On this screen" not in s, 60, "the workbench again")
    finally:
        tmux.close()
