"""Shared fixtures: small generated datasets a tiny model learns in seconds.

The tests live in folders by what they drive: ``engine/`` (the engine and the CLI), ``app/`` (the
app with Pilot and snapshots), ``terminal/`` (the app in tmux), ``hostile/`` (fault injection and
hostile input); the project-wide checks (layering, code shape, docs) stay here. Every folder is on
``sys.path``, so a test may use another's helpers by module name (``from test_tmux import Tmux``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "sample_data"
TEST_FOLDERS = ("engine", "app", "terminal", "hostile")
sys.path[:0] = [str(Path(__file__).resolve().parent / folder) for folder in TEST_FOLDERS]


def synthetic_image(rng: np.random.Generator, fake: int, size: int = 72) -> Image.Image:
    """Real: smooth gradients; fake: the same with a noisy square pasted in (easy to learn, not trivial)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([yy * rng.uniform(80, 200), xx * rng.uniform(80, 200), (xx + yy) * rng.uniform(40, 120)], -1)
    base += rng.uniform(0, 50, 3)
    if fake:
        s = int(rng.integers(size // 3, size // 2))
        y, x = rng.integers(0, size - s, 2)
        base[y : y + s, x : x + s] += rng.normal(0, 40, (s, s, 3))
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def write_ffdi(root: Path, counts: dict[str, int], seed: int = 0, size: int = 72) -> Path:
    """An FFDI-layout dataset: <split>set/ folders and <split>set_label.txt files (test labelled too)."""
    rng = np.random.default_rng(seed)
    for split, n in counts.items():
        folder = root / f"{split}set"
        folder.mkdir(parents=True)
        lines = ["img_name,target"]
        for i in range(n):
            target = i % 2
            name = f"{split}{i:05d}.jpg"
            synthetic_image(rng, target, size).save(folder / name, quality=92)
            lines.append(f"{name},{target}")
        (root / f"{split}set_label.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="session", autouse=True)
def no_engine_outlives_the_tests(tmp_path_factory: pytest.TempPathFactory):
    """Engines are their own processes: one that a failing test left behind would hog the cores for every later test."""
    yield
    import os
    import signal

    from engine.contract.launch import _pid_alive, is_engine_process, read_json

    for path in tmp_path_factory.getbasetemp().rglob("engine*.json"):
        info = read_json(path) or {}
        for key in ("engine_pid", "pid"):  # the engine, then its supervisor
            pid = info.get(key)
            # only a real engine: tests forge engine.json with stand-in pids (one named pytest's parent once,
            # and this cleanup SIGKILLed `make test` in CI)
            if _pid_alive(pid, info.get("started")) and is_engine_process(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def live_pid():
    """The pid of a live process this test owns, for engine.json files that must name a running engine."""
    import subprocess

    stand_in = subprocess.Popen(["sleep", "600"])
    yield stand_in.pid
    stand_in.kill()
    stand_in.wait()


@pytest.fixture(scope="session")
def tiny_ffdi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Read-only tiny dataset (copy it before breaking it)."""
    return write_ffdi(tmp_path_factory.mktemp("tiny") / "data", {"train": 96, "val": 48, "test": 20})


@pytest.fixture
def tiny_copy(tiny_ffdi: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny dataset that a test may break."""
    import shutil

    return Path(shutil.copytree(tiny_ffdi, tmp_path / "data"))


FAST_TRAIN = [
    "--model", "resnet10t", "--img-size", "64", "--batch-size", "16", "--workers", "0", "--lr", "0.002",
]


FIXTURE_RUNS = Path(__file__).resolve().parent / "fixtures" / "runs"
DEAD_PID = 2**22 + 4321  # above Linux's default pid_max: no process has it


def install_fixture_runs(target: Path) -> Path:
    """Recorded runs (finished, stopped, crashed) in a private runs folder; the crashed one's engine is gone."""
    import json
    import shutil
    import socket

    runs = Path(shutil.copytree(FIXTURE_RUNS, target))
    for run in runs.iterdir():  # the recorded runs trained on sample_data: point them at this checkout's
        for name in ("config.toml", "events.jsonl"):
            path = run / name
            text = path.read_text().replace('"sample_data"', json.dumps(str(SAMPLE_DATA)))
            path.write_text(text)
    engine = {"pid": DEAD_PID, "engine_pid": DEAD_PID, "host": socket.gethostname(), "started": 0.0}
    (runs / "crashed" / "engine.json").write_text(json.dumps(engine))
    return runs


def install_fixture_weights(runs: Path, saved: float | None = None) -> list[Path]:
    """Stand-in weights (zero bytes) beside the recorded runs' checkpoint sidecars, and best.safetensors, so the
    checkpoints screen lists them (the fixture keeps sidecars, not weights)."""
    import json
    import os

    written = []
    for sidecar in sorted(runs.glob("*/checkpoints/*.json")):
        if sidecar.name == "index.json":
            continue
        weights = sidecar.with_suffix(".safetensors")
        weights.write_bytes(b"\0" * 4096)
        if saved is not None:
            os.utime(weights, (saved, saved))
        if json.loads(sidecar.read_text()).get("is_best"):
            best = sidecar.parent / "best.safetensors"
            best.unlink(missing_ok=True)
            best.symlink_to(weights.name)
        written.append(weights)
    return written


MODEL_NAMES = ["resnet10t", "resnet18", "resnet50", "efficientnet_b0", "efficientnet_b1", "test_resnet",
               "test_efficientnet", "vit_tiny_patch16_224"]
