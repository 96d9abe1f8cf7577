"""From a Split to uint8 batches on the device, normalised there.

Why it looks like this (ARCHITECTURE.md, the engine):
- JPEGs are decoded in draft mode straight to about the training size, batches stay
  uint8 until they reach the device, and normalisation happens there.
- The augmentation of sample i in epoch e is a pure function of (seed, e, i): the
  sampler hands the epoch to the workers with each index. Runs are repeatable with
  any number of workers, and a resumed run sees exactly the same images.
- A file that cannot be decoded becomes a "bad" entry of its batch instead of an
  exception in a worker, so the training loop decides: skip and report, or fail.
- Names are kept in one numpy bytes array, not a list of str, so forked workers
  share them instead of copying a million Python objects each.
"""

from __future__ import annotations

import functools
import io
import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from torchvision.transforms import v2

from engine.data.dataset import Split
from engine.data.images import DEFAULT_MAX_PIXELS, BadImage, open_rgb
from engine.data.self_blend import pseudo_fake

LIGHT_SCALE = (0.7, 1.0)
STRONG_SCALE = (0.5, 1.0)


@dataclass(frozen=True)
class ImageSpec:
    """How a model wants its input: size and normalisation (saved with every checkpoint)."""

    img_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    eval_crop: float = 1.0
    crop: str = "resize"  # "native": img_size crops at the image's own resolution (data.crop)
    eval_grid: int = 1  # native: an image is scored by eval_grid x eval_grid crops
    eval_reduce: str = "mean"  # native: the crops' probabilities of fake become one score by their mean or max

    @property
    def eval_crops(self) -> int:
        """Crops scored per image: 1 unless native crops score a grid."""
        return self.eval_grid**2 if self.crop == "native" else 1


class RandomJPEG(v2.Transform):
    """Re-compress a PIL image as JPEG at a random quality: forgeries in the wild are re-encoded.

    PIL does the work (torchvision's own JPEG codec is deprecated); the dice come from
    torch's RNG, so the per-sample seeding keeps it repeatable.
    """

    def __init__(self, quality: tuple[int, int], p: float):
        super().__init__()
        self.quality = quality
        self.p = p

    def forward(self, img):
        if float(torch.rand(())) >= self.p:
            return img
        quality = int(torch.randint(self.quality[0], self.quality[1] + 1, ()))
        buffer = io.BytesIO()
        img.save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        return Image.open(buffer).convert("RGB")


def to_hwc_tensor(img: Image.Image) -> torch.Tensor:
    """H x W x 3 uint8, PIL's own layout: batches of these are channels_last already, no transpose anywhere."""
    return torch.from_numpy(np.array(img, dtype=np.uint8, copy=True))


def _strong_steps() -> list[v2.Transform]:
    return [
        v2.RandomApply([v2.ColorJitter(0.3, 0.3, 0.3, 0.05)], p=0.8),
        v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 2.0))], p=0.2),
        RandomJPEG((50, 95), p=0.3),
    ]


def native_train_transform(spec: ImageSpec, preset: str) -> tuple[v2.Compose, int]:
    """A random img_size crop at the image's own resolution (zero-padded when smaller): resizing would blur away
    the high-frequency traces of up-sampling and splicing. Decoded at full size (0: no JPEG draft reduction)."""
    steps: list[v2.Transform] = [v2.RandomCrop(spec.img_size, pad_if_needed=True)]
    if preset != "none":
        steps.append(v2.RandomHorizontalFlip())
    if preset == "strong":
        steps += _strong_steps()
    return v2.Compose([*steps, to_hwc_tensor]), 0


def train_transform(spec: ImageSpec, preset: str) -> tuple[v2.Compose, int]:
    """The augmentation preset and the size to decode at (so a crop is not upscaled much)."""
    size = spec.img_size
    if spec.crop == "native":
        return native_train_transform(spec, preset)
    if preset == "none":
        return v2.Compose([v2.Resize((size, size), antialias=True), to_hwc_tensor]), size
    scale = LIGHT_SCALE if preset == "light" else STRONG_SCALE
    steps: list[v2.Transform] = [
        v2.RandomResizedCrop(size, scale=scale, antialias=True),
        v2.RandomHorizontalFlip(),
    ]
    if preset == "strong":
        steps += _strong_steps()
    steps.append(to_hwc_tensor)
    return v2.Compose(steps), math.ceil(size / math.sqrt(scale[0]))


class GridCrops:
    """``grid`` x ``grid`` crops of ``size`` pixels at native resolution, spread evenly from corner to corner, as one
    uint8 K x size x size x 3 tensor. An image smaller than a crop is zero-padded around its centre first. With
    grid * size at least the image's sides the crops cover every pixel."""

    def __init__(self, size: int, grid: int):
        self.size = size
        self.grid = grid

    def starts(self, side: int) -> np.ndarray:
        """Where the crops along one side begin: corner to corner, or the centre for a grid of one."""
        if self.grid == 1:
            return np.array([(side - self.size) // 2])
        return np.linspace(0, side - self.size, self.grid).round().astype(int)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        pixels = np.asarray(img, dtype=np.uint8)
        s = self.size
        h, w = pixels.shape[:2]
        if h < s or w < s:
            top, left = max(0, s - h) // 2, max(0, s - w) // 2
            padded = np.zeros((max(h, s), max(w, s), 3), dtype=np.uint8)
            padded[top:top + h, left:left + w] = pixels
            pixels, h, w = padded, max(h, s), max(w, s)
        ys, xs = self.starts(h), self.starts(w)
        return torch.from_numpy(np.stack([pixels[y:y + s, x:x + s] for y in ys for x in xs]))


def eval_transform(spec: ImageSpec) -> tuple[v2.Compose, int]:
    """Deterministic: resize the whole image, or resize then centre-crop when eval_crop < 1; with native crops,
    a grid of crops at full resolution (decode size 0: no JPEG draft reduction)."""
    size = spec.img_size
    if spec.crop == "native":
        return v2.Compose([GridCrops(size, spec.eval_grid)]), 0
    if spec.eval_crop >= 1.0:
        return v2.Compose([v2.Resize((size, size), antialias=True), to_hwc_tensor]), size
    resize = int(math.floor(size / spec.eval_crop))
    return v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(size), to_hwc_tensor]), resize


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return ((seed * 1_000_003 + epoch) * 1_000_000_007 + index) % (1 << 62)


class ImageDataset(torch.utils.data.Dataset):
    """Items are (image uint8 CHW or None, target, index, reason); indexed by (index, epoch).

    ``pseudo_fakes``: the share of real images that become fakes (self-blended, engine.data.self_blend) each
    time they are drawn, decided by the sample's own seed, so a resumed run makes the same ones.
    """

    def __init__(self, split: Split, transform: v2.Compose | None, decode_size: int, seed: int = 0,
                 max_pixels: int = DEFAULT_MAX_PIXELS, pseudo_fakes: float = 0.0):
        self.folder = str(split.folder)
        self.names = np.array([n.encode("utf-8") for n in split.names], dtype=np.bytes_)
        targets = split.targets if split.targets is not None else np.full(len(split.names), -1)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.transform = transform
        self.decode_size = decode_size
        self.seed = seed
        self.max_pixels = max_pixels
        self.pseudo_fakes = pseudo_fakes

    def __len__(self) -> int:
        return len(self.names)

    def name(self, index: int) -> str:
        return self.names[index].decode("utf-8")

    def __getitem__(self, key: tuple[int, int] | int):
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        target = int(self.targets[index])
        try:
            img = open_rgb(f"{self.folder}/{self.name(index)}", self.decode_size, self.max_pixels)
        except BadImage as exc:
            return None, target, index, str(exc)
        if torch.utils.data.get_worker_info() is not None:
            torch.default_generator.manual_seed(sample_seed(self.seed, epoch, index))
            return (*self._transformed(img, target), index, "")
        with torch.random.fork_rng(devices=[]):  # main process: leave the training RNG alone
            torch.default_generator.manual_seed(sample_seed(self.seed, epoch, index))
            return (*self._transformed(img, target), index, "")

    def _transformed(self, img: Image.Image, target: int) -> tuple[torch.Tensor, int]:
        """The augmented image and its target; a real image may become a pseudo-fake first (the dice are torch's,
        seeded per sample: with pseudo_fakes at 0 nothing is drawn, so other runs see the same augmentation)."""
        if self.pseudo_fakes > 0 and target == 0 and float(torch.rand(())) < self.pseudo_fakes:
            fake = pseudo_fake(img, int(torch.randint(0, 2**62, ())))
            if fake is not None:  # None: too small to blend, it stays real
                img, target = fake, 1
        return self.transform(img), target


@dataclass
class Batch:
    images: torch.Tensor  # uint8, N x H x W x 3, or N x K x H x W x 3 for K crops per image (DeviceNormalizer
    # makes the N x 3 x H x W, or N*K x 3 x H x W, view)
    targets: torch.Tensor  # int64
    indices: torch.Tensor  # int64, positions in the split
    bad: list[tuple[int, str]]  # (index, reason) of the samples that could not be decoded

    def pin_memory(self) -> Batch:
        return Batch(self.images.pin_memory(), self.targets.pin_memory(), self.indices.pin_memory(), self.bad)


def collate(items: list) -> Batch:
    good = [it for it in items if it[0] is not None]
    bad = [(it[2], it[3]) for it in items if it[0] is None]
    if not good:
        empty = torch.empty(0, dtype=torch.int64)
        return Batch(torch.empty(0, 1, 1, 3, dtype=torch.uint8), empty, empty, bad)
    return Batch(
        torch.stack([it[0] for it in good]),
        torch.tensor([it[1] for it in good], dtype=torch.int64),
        torch.tensor([it[2] for it in good], dtype=torch.int64),
        bad,
    )


class EpochSampler(Sampler):
    """DistributedSampler's order (seeded by seed + epoch, sharded by rank) yielding (index, epoch).

    ``start`` skips the first samples of this rank's share: resuming mid-epoch.
    """

    def __init__(self, size: int, shuffle: bool, seed: int, num_replicas: int = 1, rank: int = 0,
                 repeats: np.ndarray | None = None):
        # repeats (data.sample_weights): image i is drawn repeats[i] times per epoch
        self.repeats = repeats
        self.order = np.repeat(np.arange(size), repeats) if repeats is not None else None
        total = len(self.order) if self.order is not None else size
        self.inner = DistributedSampler(range(total), num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch = epoch
        self.start = start
        self.inner.set_epoch(epoch)

    def __iter__(self):
        epoch = self.epoch
        for i, index in enumerate(self.inner):
            if i >= self.start:
                yield (int(self.order[index]) if self.order is not None else index), epoch

    def __len__(self) -> int:
        return len(self.inner) - self.start


def _lower_priority(niceness: int, _worker_id: int) -> None:
    os.nice(niceness)


def make_loader(
    dataset: ImageDataset,
    sampler: EpochSampler,
    batch_size: int,
    workers: int,
    pin_memory: bool,
    drop_last: bool = False,
    worker_niceness: int = 0,
) -> DataLoader:
    """``worker_niceness`` > 0 when the model runs on the same CPU cores: decoding then fills the compute
    threads' idle time instead of stalling them (an OpenMP step waits for its slowest thread)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        drop_last=drop_last,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        # Its own generator: making an iterator would otherwise draw from the global RNG (dropout's), which
        # a resumed run could not replay. Augmentation is seeded per sample, so this seed changes nothing else.
        generator=torch.Generator().manual_seed(0),
        worker_init_fn=functools.partial(_lower_priority, worker_niceness) if worker_niceness and workers else None,
    )


class DeviceNormalizer:
    """uint8 NHWC batch -> normalised float NCHW on the device, in place there, not per sample on the CPU.

    The NHWC batch seen as NCHW *is* channels_last memory, so that format costs no copy; only
    contiguous NCHW (channels_last off) pays one.
    """

    def __init__(self, spec: ImageSpec, device: torch.device, channels_last: bool):
        self.device = device
        self.channels_last = channels_last
        self.mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1) * 255.0
        self.inv_std = 1.0 / (torch.tensor(spec.std, device=device).view(1, 3, 1, 1) * 255.0)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Crops of an image (N x K x H x W x 3) come out as consecutive rows, N*K x 3 x H x W."""
        if images.dim() == 5:
            images = images.flatten(0, 1)
        x = images.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        if not self.channels_last:
            x = x.contiguous()
        return x.sub_(self.mean).mul_(self.inv_std)
