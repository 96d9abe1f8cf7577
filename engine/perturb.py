"""Applying a perturbation to a decoded image (torchvision's transforms v2, PIL's JPEG), seeded per image.

The image is perturbed at its decoded resolution, before the model's resize: what a
re-upload to a sharing site does to a picture. Noise comes from a generator seeded by
(run seed, spec, image index), so a matrix repeats exactly with any number of workers.
"""

from __future__ import annotations

import io
import math
import zlib

import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from engine.contract.perturbspec import Perturbation, Step


def perturbation_seed(seed: int, perturbation: Perturbation, index: int) -> int:
    """Depends on the spec's text, not its place in the suite: the same spec adds the same noise anywhere."""
    return (seed * 1_000_003 + zlib.crc32(perturbation.name.encode()) * 1_000_000_007 + index) % (1 << 62)


def _blur_kernel(sigma: float, height: int, width: int) -> int:
    """Three sigmas each side, clamped to the image: reflect padding must be smaller than the image's sides, so a
    1 x 1 image (or a 32 px one under blur:20) is blurred by the widest kernel it has room for."""
    return min(2 * math.ceil(3.0 * sigma) + 1, 2 * min(height, width) - 1)


def _jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Through PIL's libjpeg, as training's RandomJPEG (torchvision's own codec is deprecated)."""
    buffer = io.BytesIO()
    TF.to_pil_image(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return TF.pil_to_tensor(Image.open(buffer).convert("RGB"))


def apply_step(step: Step, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One step on a uint8 C x H x W tensor."""
    height, width = image.shape[-2:]
    if step.kind == "jpeg":
        return _jpeg(image, int(step.value))
    if step.kind == "resize":
        small = (max(1, round(height * step.value)), max(1, round(width * step.value)))
        return TF.resize(TF.resize(image, list(small), antialias=True), [height, width], antialias=True)
    if step.kind == "blur":
        kernel = _blur_kernel(step.value, height, width)
        return TF.gaussian_blur(image, [kernel, kernel], [step.value, step.value])
    if step.kind == "noise":
        noise = torch.randn(image.shape, generator=generator) * (step.value * 255.0)
        return (image.float() + noise).round_().clamp_(0, 255).to(torch.uint8)
    if step.kind == "crop":
        return TF.center_crop(image, [max(1, round(height * step.value)), max(1, round(width * step.value))])
    raise ValueError(f"unknown perturbation step {step.kind!r}")


def perturb_tensor(perturbation: Perturbation, image: torch.Tensor, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    for step in perturbation.steps:
        image = apply_step(step, image, generator)
    return image


def perturb_image(perturbation: Perturbation, image: Image.Image, seed: int) -> Image.Image:
    """The PIL image perturbed; the clean row returns it untouched, so it matches a plain evaluation bit for bit."""
    if perturbation.is_clean:
        return image
    return TF.to_pil_image(perturb_tensor(perturbation, TF.pil_to_tensor(image), seed))
