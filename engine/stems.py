"""A fixed high-pass residual stem (SRM filters) in front of a timm backbone.

Forgeries leave traces in the noise of an image (resampling, splicing boundaries,
re-noising) that its content hides; a CNN trained from scratch on few images learns
content first. The three 5x5 SRM kernels of Zhou et al. 2018 ("Learning Rich Features
for Image Manipulation Detection", after Fridrich & Kodovsky's rich models) remove the
content and keep the residual. They are a registered buffer, not parameters: saved in
the state dict (a checkpoint says what it was trained with), never trained, and no
optimiser or weight decay touches them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STEM_KEY = "stem.kernels"  # the buffer's name in a state dict: how a checkpoint's weights show their stem


def srm_kernels() -> torch.Tensor:
    """3 x 3 x 5 x 5: output channel i applies kernel i to each colour channel and sums them (as RGB-N does)."""
    first_order = torch.tensor([[0, 0, 0, 0, 0],
                                [0, -1, 2, -1, 0],
                                [0, 2, -4, 2, 0],
                                [0, -1, 2, -1, 0],
                                [0, 0, 0, 0, 0]], dtype=torch.float32) / 4.0
    kv = torch.tensor([[-1, 2, -2, 2, -1],
                       [2, -6, 8, -6, 2],
                       [-2, 8, -12, 8, -2],
                       [2, -6, 8, -6, 2],
                       [-1, 2, -2, 2, -1]], dtype=torch.float32) / 12.0
    second_order = torch.tensor([[0, 0, 0, 0, 0],
                                 [0, 0, 0, 0, 0],
                                 [0, 1, -2, 1, 0],
                                 [0, 0, 0, 0, 0],
                                 [0, 0, 0, 0, 0]], dtype=torch.float32) / 2.0
    kernels = torch.stack([first_order, kv, second_order])  # 3 x 5 x 5, each sums to 0
    return kernels[:, None].expand(3, 3, 5, 5).contiguous()


class SRMStem(nn.Module):
    """Image (N x 3 x H x W) -> its SRM residuals (3 channels), optionally after the image itself (6 channels).

    Reflect padding keeps the size and keeps a flat region flat: a constant image has zero residual everywhere,
    borders included."""

    def __init__(self, keep_rgb: bool):
        super().__init__()
        self.keep_rgb = keep_rgb
        self.register_buffer("kernels", srm_kernels())

    @property
    def out_channels(self) -> int:
        return 6 if self.keep_rgb else 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernels = self.kernels.to(x.dtype)
        residual = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernels)
        return torch.cat([x, residual], dim=1) if self.keep_rgb else residual


class StemmedModel(nn.Module):
    """``stem`` then the timm ``backbone``; state dict keys ``stem.kernels`` and ``backbone.*``."""

    def __init__(self, stem: SRMStem, backbone: nn.Module):
        super().__init__()
        self.stem = stem
        self.backbone = backbone
        self.pretrained_cfg = getattr(backbone, "pretrained_cfg", {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.stem(x))


def backbone_of(model: nn.Module) -> nn.Module:
    """The timm model: itself, or the backbone behind a stem."""
    return model.backbone if isinstance(model, StemmedModel) else model


def stem_of_state(state: dict[str, torch.Tensor]) -> str:
    """The stem a state dict was saved with: rgb (plain timm keys), srm or rgb+srm (by the backbone's input channels)."""
    if STEM_KEY not in state:
        return "rgb"
    first_conv = next((v for k, v in state.items() if k.startswith("backbone.") and v.dim() == 4), None)
    return "rgb+srm" if first_conv is not None and first_conv.shape[1] == 6 else "srm"
