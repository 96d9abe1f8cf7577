"""Class-activation maps (Grad-CAM, Grad-CAM++, HiResCAM) from a forward and a backward hook.

Written here rather than taken from pytorch-grad-cam, torchcam or captum: the first imports
OpenCV, matplotlib, SciPy, scikit-learn and ttach eagerly, the other two pin numpy below 2,
and what is needed is a hook on one layer and three weightings of its gradient.

The target is the fake class's log-odds (logit of fake minus logit of real): with two classes
it is what the probability of fake depends on. Its negative explains the real class, and
"called" takes the class the model calls, per image (an image called real has an empty fake map:
no region argues for fake). The layer's output is a feature map
(N x C x h x w), channels-last (N x h x w x C, Swin), or tokens (N x T x C, ViT), whose
prefix tokens (class, distillation, registers) are dropped and the rest laid on their grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.contract.errors import FfdvError
from engine.stems import backbone_of

METHODS = ("gradcam", "gradcam++", "hirescam")
TOWARDS = ("fake", "real", "called")  # the class a map argues for: fake, real, or the one the model calls
FAKE, REAL = 1, 0
HEAD_NAMES = ("head", "fc", "classifier", "global_pool", "head_drop", "fc_norm", "pre_logits")


class ExplainError(FfdvError):
    """A model or image that cannot be explained as asked (no target layer, an unknown method)."""


@dataclass(frozen=True)
class TargetLayer:
    name: str  # as in model.named_modules()
    module: nn.Module
    layout: str  # "nchw", "nhwc" or "tokens"
    prefix_tokens: int = 0


def find_target_layer(model: nn.Module, layer: str | None, img_size: int) -> TargetLayer:
    """``layer`` by name, or the family's default: ViT blocks[-1].norm1, Swin layers[-1], a CNN's last feature map."""
    modules = dict(model.named_modules())
    backbone = backbone_of(model)
    prefix = "backbone." if backbone is not model else ""
    tokens = int(getattr(backbone, "num_prefix_tokens", 0))
    if layer is None and hasattr(backbone, "blocks") and hasattr(backbone, "patch_embed"):
        layer = f"{prefix}blocks.{len(backbone.blocks) - 1}.norm1"
    elif layer is None and "swin" in type(backbone).__name__.lower():
        layer = f"{prefix}layers.{len(backbone.layers) - 1}"
    if layer is not None:
        if layer not in modules:
            close = [n for n in modules if n.endswith(layer.rsplit(".", 1)[-1])][-5:]
            raise ExplainError(f"--layer {layer!r}: the model has no module of that name"
                               + (f" (similar: {', '.join(close)})" if close else "")
                               + ". Fix: pass a name from model.named_modules(), e.g. the last stage of the backbone.")
        return TargetLayer(layer, modules[layer], _layout_of(model, modules[layer], img_size), tokens)
    return _last_feature_map(model, img_size, prefix)


def _probe(model: nn.Module, img_size: int, modules: dict[str, nn.Module]) -> list[tuple[str, tuple[int, ...]]]:
    """The output shape of each module, in the order they finish, for one blank image."""
    seen: list[tuple[str, tuple[int, ...]]] = []
    handles = [m.register_forward_hook(lambda _m, _i, out, n=n: seen.append((n, tuple(out.shape)))
                                       if isinstance(out, torch.Tensor) else None) for n, m in modules.items() if n]
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, img_size, img_size, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _layout_of(model: nn.Module, module: nn.Module, img_size: int) -> str:
    shapes = _probe(model, img_size, {"x": module})
    shape = shapes[-1][1] if shapes else ()
    if len(shape) == 3:
        return "tokens"
    if len(shape) == 4:
        return "nhwc" if "swin" in type(backbone_of(model)).__name__.lower() else "nchw"
    raise ExplainError(f"the chosen layer's output has shape {shape}, not a feature map or tokens. "
                       "Fix: pass --layer with a convolutional stage or a transformer block.")


def _last_feature_map(model: nn.Module, img_size: int, prefix: str) -> TargetLayer:
    modules = dict(model.named_modules())
    shapes = [(n, s) for n, s in _probe(model, img_size, modules)
              if len(s) == 4 and n.removeprefix(prefix).split(".")[0] not in HEAD_NAMES]
    spatial = [(n, s) for n, s in shapes if s[2] * s[3] > 1] or shapes
    if not spatial:
        raise ExplainError(f"no layer of this model ({type(backbone_of(model)).__name__}) gives a feature map to "
                           "explain. Fix: pass --layer NAME with a module whose output is N x C x H x W or tokens.")
    name = spatial[-1][0]
    return TargetLayer(name, modules[name], "nchw")


def _as_nchw(x: torch.Tensor, target: TargetLayer) -> torch.Tensor:
    if target.layout == "nhwc":
        return x.permute(0, 3, 1, 2)
    if target.layout == "tokens":
        x = x[:, target.prefix_tokens:]
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise ExplainError(f"layer {target.name}: {x.shape[1]} tokens do not make a square grid. "
                               "Fix: pass --layer with a block of a square-input model.")
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], side, side)
    return x


def cam_weights(method: str, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """The map before its ReLU, N x h x w, from activations and gradients (N x C x h x w)."""
    if method == "hirescam":
        return (grads * acts).sum(1)
    if method == "gradcam":
        weights = grads.mean((2, 3), keepdim=True)
    elif method == "gradcam++":  # Chattopadhyay et al. 2018, with exp(score) folded into the gradient powers
        g2, g3 = grads.pow(2), grads.pow(3)
        alpha = g2 / (2 * g2 + acts.sum((2, 3), keepdim=True) * g3 + 1e-7)
        alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
        weights = (alpha * F.relu(grads)).sum((2, 3), keepdim=True)
    else:
        raise ExplainError(f"--method {method!r}: not one of {', '.join(METHODS)}")
    return (weights * acts).sum(1)


def class_activation_maps(model: nn.Module, x: torch.Tensor, target: TargetLayer,
                          method: str = "gradcam", toward: str = "fake") -> tuple[torch.Tensor, torch.Tensor]:
    """(maps N x H x W at the input's size, >= 0 and not yet scaled, probabilities of fake N) for a normalised batch."""
    saved: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, out):
        out = out[0] if isinstance(out, tuple) else out
        saved["acts"] = out
        out.register_hook(lambda grad: saved.__setitem__("grads", grad))

    if toward not in TOWARDS:
        raise ExplainError(f"--toward {toward!r}: not one of {', '.join(TOWARDS)}")
    handle = target.module.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = model(x.detach().requires_grad_(True)).float()
            log_odds = logits[:, FAKE] - logits[:, REAL]
            sign = {"fake": 1.0, "real": -1.0}.get(toward) or torch.where(log_odds.detach() >= 0, 1.0, -1.0)
            (log_odds * sign).sum().backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    if "grads" not in saved:
        raise ExplainError(f"layer {target.name}: no gradient reached it. Fix: pass --layer with a layer the "
                           "class score depends on.")
    acts, grads = _as_nchw(saved["acts"].detach().float(), target), _as_nchw(saved["grads"].float(), target)
    cam = F.relu(cam_weights(method, acts, grads))[:, None]
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return cam.detach(), logits.detach().softmax(1)[:, FAKE]
