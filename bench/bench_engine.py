"""Engine speed against the plain loop and against the limit, in one run on this machine.

(a) the engine: a real ``Trainer`` run (its second epoch, so worker start-up is not counted);
(b) the plain loop the teaching baseline writes: PIL full decode, Resize, ToTensor,
    Normalize in the workers, float batches, ``loss.item()`` every step; same model,
    batch size, optimiser and number of workers;
(c) the limit: the model alone on a batch already in memory (the better of the two
    memory formats).
Likewise for prediction. Images are FFDI-like JPEGs (a few hundred pixels a side),
generated once into .bench/ from the bundled sample photographs.

    python bench/bench_engine.py [--model resnet10t] [--img-size 128] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.checkpoint_loading import LoadedCheckpoint  # noqa: E402
from engine.contract.config import (  # noqa: E402
    load_config,
    resolve,
    resolve_workers,
    save_config,
)
from engine.contract.protocol import EpochEnded  # noqa: E402
from engine.contract.runstore import EventWriter, create_run_dir  # noqa: E402
from engine.data.dataset import find_dataset  # noqa: E402
from engine.device import setup_device  # noqa: E402
from engine.models import create_model  # noqa: E402
from engine.predict import score_split  # noqa: E402
from engine.sink import EventSink  # noqa: E402
from engine.train import Trainer  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


# ---------------------------------------------------------------- data


def make_bench_data(root: Path, n_train: int, n_val: int, sides: tuple[int, int]) -> Path:
    """FFDI layout; each image a sample photograph resized to a random size within ``sides`` px, JPEG q90."""
    marker = root / f".made-{n_train}-{n_val}-{sides[0]}-{sides[1]}"
    if marker.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    sources = [Image.open(p).convert("RGB") for p in sorted((REPO / "sample_data" / "trainset").glob("*.jpg"))[:40]]
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        folder = root / f"{split}set"
        folder.mkdir(parents=True)
        lines = ["img_name,target"]
        for i in range(n):
            src = sources[i % len(sources)]
            w, h = (int(v) for v in rng.integers(sides[0], sides[1] + 1, 2))
            img = src.resize((w, h), Image.BICUBIC)
            arr = np.asarray(img).astype(np.int16) + rng.integers(-6, 7, (h, w, 3))
            Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(folder / f"{i:06d}.jpg", quality=90)
            lines.append(f"{i:06d}.jpg,{i % 2}")
        (root / f"{split}set_label.txt").write_text("\n".join(lines) + "\n")
    marker.touch()
    return root


class PlainDataset(Dataset):
    """The teaching baseline's dataset: full decode, torchvision transforms to a float tensor."""

    def __init__(self, folder: Path, names: list[str], targets: np.ndarray, size: int):
        self.paths = [str(folder / n) for n in names]
        self.targets = torch.from_numpy(np.asarray(targets, dtype=np.int64))
        self.transform = transforms.Compose([
            transforms.Resize((size, size)),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return self.transform(Image.open(self.paths[i]).convert("RGB")), self.targets[i]


# ---------------------------------------------------------------- measurements


class GpuUtilization:
    """nvidia-smi's utilisation, sampled twice a second while a block runs (empty without a GPU)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                      "-i", "0"], capture_output=True, text=True, timeout=5).stdout
                self.samples.append(float(out.strip().splitlines()[0]))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return

    def __enter__(self) -> GpuUtilization:
        if torch.cuda.is_available() and shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def mean(self) -> float | None:
        busy = self.samples[len(self.samples) // 3:]  # skip start-up
        return sum(busy) / len(busy) if busy else None


def engine_train(data: Path, args, workers: int, pseudo_fakes: float = 0.0) -> float:
    runs = Path(tempfile.mkdtemp(prefix="ffdv-bench-"))
    config = resolve(load_config(overrides={
        "data.root": str(data), "data.img_size": args.img_size, "data.workers": workers, "data.augment": "light",
        "data.pseudo_fakes": pseudo_fakes,
        "model.name": args.model, "train.batch_size": args.batch_size, "train.epochs": 3, "run.runs": str(runs),
        "optim.lr": 1e-3, "model.stem": "rgb",  # the plain loop's model: loop against loop, not stem against none
    }))
    paths = create_run_dir(runs, "bench")
    save_config(paths, config)
    ended: list[EpochEnded] = []
    sink = EventSink(EventWriter(paths.events), [lambda e: ended.append(e) if isinstance(e, EpochEnded) else None])
    try:
        Trainer(paths, config, sink).run()
    finally:
        sink.close()
        shutil.rmtree(runs, ignore_errors=True)
    return max(e.images_per_sec for e in ended[1:])  # the first epoch pays for start-up


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the loader's workers, reaped when a run ends)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pseudo_fake_cost(data: Path, args, workers: int, pairs: int = 2) -> dict:
    """Training with and without pseudo-fakes (made in the loader's workers), alternating: images/s of each and
    the CPU seconds of each whole run (the same images), which a busy machine disturbs far less than wall time."""
    runs: dict[float, list[tuple[float, float]]] = {0.0: [], args.pseudo_fakes: []}
    for _ in range(pairs):
        for share in runs:
            before = cpu_seconds()
            rate = engine_train(data, args, workers, share)
            runs[share].append((rate, cpu_seconds() - before))
    (rate0, cpu0), (rate1, cpu1) = ((float(np.median([r for r, _ in v])), float(np.median([c for _, c in v])))
                                    for v in runs.values())
    print(f"pseudo-fakes {args.pseudo_fakes:g}: {rate1:.1f} against {rate0:.1f} images/s without ({rate1 / rate0:.2f}x); "
          f"CPU of a whole run {cpu1:.1f} s against {cpu0:.1f} s ({cpu0 / cpu1:.2f}x the throughput where the CPU "
          f"is the limit); medians of {pairs}, alternating")
    return {"share": args.pseudo_fakes, "images_per_sec": [rate0, rate1], "cpu_seconds": [cpu0, cpu1]}


def plain_train(data: Path, args, workers: int) -> float:
    split = find_dataset(data).splits["train"]
    loader = DataLoader(PlainDataset(split.folder, split.names, split.targets, args.img_size), batch_size=args.batch_size,
                        shuffle=True, num_workers=workers, drop_last=True, persistent_workers=workers > 0)
    device = bench_device()
    model = timm.create_model(args.model, num_classes=2).to(device)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    rate = 0.0
    for epoch in range(3):  # the best later epoch is measured, as for the engine
        model.train()
        start, images = time.perf_counter(), 0
        for inputs, target in loader:
            inputs = inputs.to(device, non_blocking=True)
            target = target.to(device, non_blocking=True)
            output = model(inputs)
            loss = criterion(output, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()  # the baseline logs every step
            images += inputs.shape[0]
        if epoch:
            rate = max(rate, images / (time.perf_counter() - start))
    return rate


def bench_device() -> torch.device:
    return setup_device(load_config()).device


def limit_setup(args, batch: int, channels_last: bool, train: bool):
    """The model and one batch already on the device, in the engine's precision (the best it can do)."""
    setup = setup_device(load_config())
    model = timm.create_model(args.model, num_classes=2).to(setup.device)
    x = torch.randn(batch, 3, args.img_size, args.img_size, device=setup.device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return setup, model.train(train), x


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def limit_train(args, channels_last: bool, steps: int = 30) -> float:
    setup, model, x = limit_setup(args, args.batch_size, channels_last, train=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    y = torch.randint(0, 2, (args.batch_size,), device=setup.device)
    for i in range(steps + 3):
        if i == 3:
            synchronize(setup.device)
            start = time.perf_counter()
        with setup.autocast():
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(setup.device)
    return steps * args.batch_size / (time.perf_counter() - start)


def engine_predict(data: Path, args, workers: int) -> float:
    config = load_config(overrides={"data.img_size": args.img_size, "model.name": args.model, "model.stem": "rgb"})
    setup = setup_device(config)
    model, spec, _ = create_model(config)
    model.to(setup.device)
    if setup.channels_last:
        model.to(memory_format=torch.channels_last)
    loaded = LoadedCheckpoint(model, spec, {}, Path("untrained"))
    split = find_dataset(data).splits["val"]
    rate = 0.0
    for _ in range(3):
        start = time.perf_counter()
        scores = score_split(loaded, split, setup, args.batch_size * 2, workers)
        rate = max(rate, len(scores.index) / (time.perf_counter() - start))
    return rate


def plain_predict(data: Path, args, workers: int) -> float:
    split = find_dataset(data).splits["val"]
    dataset = PlainDataset(split.folder, split.names, split.targets, args.img_size)
    dataset.transform.transforms.pop(1)  # no flip at test time
    loader = DataLoader(dataset, batch_size=args.batch_size * 2, shuffle=False, num_workers=workers,
                        persistent_workers=workers > 0)
    device = bench_device()
    model = timm.create_model(args.model, num_classes=2).to(device).eval()
    rate = 0.0
    for _ in range(3):
        start, out = time.perf_counter(), []
        with torch.no_grad():
            for inputs, _target in loader:
                out.append(torch.softmax(model(inputs.to(device)), dim=1)[:, 1].cpu().numpy())
        rate = max(rate, sum(len(o) for o in out) / (time.perf_counter() - start))
    return rate


def limit_predict(args, channels_last: bool, steps: int = 30) -> float:
    setup, model, x = limit_setup(args, args.batch_size * 2, channels_last, train=False)
    with torch.inference_mode():
        for i in range(steps + 3):
            if i == 3:
                synchronize(setup.device)
                start = time.perf_counter()
            with setup.autocast():
                model(x)
    synchronize(setup.device)
    return steps * x.shape[0] / (time.perf_counter() - start)


# ---------------------------------------------------------------- report


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet10t")
    parser.add_argument("--img-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=-1)
    parser.add_argument("--train-images", type=int, default=640)
    parser.add_argument("--val-images", type=int, default=384)
    parser.add_argument("--sides", type=int, nargs=2, default=(384, 1024), metavar=("MIN", "MAX"),
                        help="range of the generated JPEGs' sides, in pixels (photos as in FFDI, not thumbnails)")
    parser.add_argument("--pseudo-fakes", type=float, default=0.5,
                        help="also train with this share of self-blended pseudo-fakes, and report what they cost "
                             "(0: skip)")
    parser.add_argument("--pseudo-fakes-only", action="store_true", help="measure only what pseudo-fakes cost")
    parser.add_argument("--json", type=Path, default=REPO / ".bench" / "engine.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    config = load_config()
    config.data.workers = args.workers
    workers = resolve_workers(config.data.workers)
    data = make_bench_data(REPO / ".bench" / f"data-{args.train_images}", args.train_images, args.val_images,
                           tuple(args.sides))
    print(f"machine: {machine()}")
    print(f"model {args.model} at {args.img_size} px, batch {args.batch_size}, {workers} loader workers, "
          f"{args.train_images} train / {args.val_images} val JPEGs with sides of {args.sides[0]}-{args.sides[1]} px")
    if args.pseudo_fakes_only:
        pseudo_fake_cost(data, args, workers)
        return 0
    with GpuUtilization() as utilization:
        engine_rate = engine_train(data, args, workers)
    results = {
        "train": {
            "engine": engine_rate,
            "plain loop": plain_train(data, args, workers),
            "limit": max(limit_train(args, False), limit_train(args, True)),
        },
        "predict": {
            "engine": engine_predict(data, args, workers),
            "plain loop": plain_predict(data, args, workers),
            "limit": max(limit_predict(args, False), limit_predict(args, True)),
        },
    }
    print(f"\n{'':8} {'engine':>10} {'plain':>10} {'limit':>10} {'engine/plain':>13} {'engine/limit':>13}  (images/s)")
    for phase, r in results.items():
        print(f"{phase:8} {r['engine']:10.1f} {r['plain loop']:10.1f} {r['limit']:10.1f} "
              f"{r['engine'] / r['plain loop']:13.2f} {r['engine'] / r['limit']:13.2f}")
    if args.pseudo_fakes > 0:
        results["pseudo-fakes"] = pseudo_fake_cost(data, args, workers)
    if utilization.mean() is not None:
        print(f"GPU utilisation while the engine trained: {utilization.mean():.0f}%")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
                                     "images_per_sec": results, "gpu_utilization": utilization.mean(),
                                     "time": time.time()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
