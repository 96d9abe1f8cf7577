"""timm models for two classes (0 = real, 1 = fake) and their pretrained weights.

Weights a user hands us are never unpickled: safetensors, or ``torch.load`` with
``weights_only=True``. The classifier head of an ImageNet checkpoint does not fit
two classes and is left at its fresh initialisation; every other tensor must fit.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import pickle
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from torch import nn

from engine.contract.config import IMG_SIZE_RANGE, Config
from engine.contract.errors import ModelError
from engine.loader import ImageSpec
from engine.stems import STEM_KEY, SRMStem, StemmedModel, backbone_of

NUM_CLASSES = 2
HUB_HOST = ("huggingface.co", 443)


def check_model_name(name: str) -> None:
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else " `ffdv models PATTERN` lists the names."
    raise ModelError(f"model {name!r} is not a timm model.{hint}")


def _create(name: str, img_size: int, pretrained: bool, stem: str = "rgb", **kwargs) -> nn.Module:
    cfg = timm.models.get_pretrained_cfg(name) if hasattr(timm.models, "get_pretrained_cfg") else None
    if cfg is not None and getattr(cfg, "fixed_input_size", False):
        kwargs["img_size"] = img_size  # ViT-like models are built for one input size
    return build_network(name, stem, pretrained=pretrained, **kwargs)


def build_network(name: str, stem: str = "rgb", **kwargs) -> nn.Module:
    """The timm model for two classes; behind a fixed SRM stem (model.stem) when asked, its first convolution
    taking the stem's channels (timm adapts pretrained first-layer weights to them)."""
    if stem == "rgb":
        return timm.create_model(name, num_classes=NUM_CLASSES, **kwargs)
    srm = SRMStem(keep_rgb=stem == "rgb+srm")
    return StemmedModel(srm, timm.create_model(name, num_classes=NUM_CLASSES, in_chans=srm.out_channels, **kwargs))


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class TrainPyInfo:
    """What a checkpoint of timm's ``train.py`` says about its model: ``arch``, and the input size in ``args``."""

    arch: str
    img_size: int | None


# timm's train.py pickles its arguments as an argparse.Namespace: the one class allowed besides tensors.
TRAIN_PY_GLOBALS = (argparse.Namespace,)


def _train_py_info(raw: object) -> TrainPyInfo | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("arch"), str) or not isinstance(raw.get("state_dict"), dict):
        return None
    args = raw.get("args")
    size = getattr(args, "img_size", None) if isinstance(args, argparse.Namespace) else None
    if size is None and isinstance(args, argparse.Namespace):
        input_size = getattr(args, "input_size", None)
        size = input_size[-1] if isinstance(input_size, (list, tuple)) and input_size else None
    lo, hi = IMG_SIZE_RANGE
    return TrainPyInfo(raw["arch"], size if type(size) is int and lo <= size <= hi else None)


def _load_tensors(path: Path) -> object:
    """torch.load with weights_only=True; timm's Namespace of arguments is allowed, nothing else."""
    allow = getattr(torch.serialization, "safe_globals", None)
    with warnings.catch_warnings(), (allow(list(TRAIN_PY_GLOBALS)) if allow else contextlib.nullcontext()):
        warnings.simplefilter("ignore", UserWarning)  # torch warns about pickle protocols before it refuses or reads
        return torch.load(path, map_location="cpu", weights_only=True)


def read_checkpoint(path: Path | str) -> tuple[dict[str, torch.Tensor], TrainPyInfo | None]:
    """Tensors of a weights file, unwrapped from the usual containers and prefixes, and what timm's train.py
    wrote about the model when it made the file (else None)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: weights file not found")
    fix = ("Fix: pass a .safetensors file, a plain state dict saved with torch.save(model.state_dict()), "
           "or a checkpoint of timm's train.py.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = _load_tensors(path)
    except pickle.UnpicklingError:
        raise ModelError(
            f"{path}: cannot read weights: the file holds pickled Python objects besides tensors (and the "
            f"argparse.Namespace of timm's train.py), and ffdv never unpickles those (torch.load with weights_only=True). {fix}"
        ) from None
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ModelError(f"{path}: cannot read weights ({type(exc).__name__}: {reason}). {fix}") from None
    info = _train_py_info(state)
    for key in ("state_dict_ema", "state_dict", "model_ema", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path}: not a state dict of tensors. Fix: save it with torch.save(model.state_dict()).")
    prefixes = ("module.", "_orig_mod.")  # DDP and torch.compile wrappers
    for prefix in prefixes:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state, info


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """Tensors of a weights file, unwrapped from the usual containers and prefixes."""
    return read_checkpoint(path)[0]


def load_weights_file(model: nn.Module, path: Path | str, name: str) -> list[str]:
    """Load every tensor that fits; returns notes on what was left out. Refuses files for another model.

    ``model`` is a timm model; a checkpoint of a model behind an SRM stem gives its backbone's tensors."""
    state = read_state_dict(path)
    if STEM_KEY in state:
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if len(fitting) < 0.5 * len(own):
        example = next((k for k in own if k not in fitting), "")
        raise ModelError(
            f"{path}: these weights do not fit model {name!r}: {len(fitting)} of {len(own)} tensors match "
            f"(e.g. {example!r} is missing or has another shape). Fix: pass weights made for {name}."
        )
    model.load_state_dict(fitting, strict=False)
    left_out = [k for k in own if k not in fitting]
    return [f"{len(left_out)} tensors kept their fresh initialisation: {', '.join(left_out[:6])}"] if left_out else []


def create_model(config: Config) -> tuple[nn.Module, ImageSpec, list[str]]:
    """The model, its input spec, and notes worth a warning (e.g. what the weights file did not cover)."""
    m = config.model
    check_model_name(m.name)
    kwargs = {"drop_rate": m.drop_rate}
    if m.drop_path_rate:
        kwargs["drop_path_rate"] = m.drop_path_rate
    notes: list[str] = []
    if m.pretrained == "hub":
        if not _hub_reachable():
            raise ModelError(
                f"cannot download pretrained weights for {m.name!r}: this machine cannot reach the Hugging Face hub. "
                "Fix: download the model's .safetensors file on a machine with internet access and pass it "
                "with --pretrained PATH (or set [model] pretrained = \"PATH\")."
            )
        try:
            model = _create(m.name, config.data.img_size, True, m.stem, **kwargs)
        except Exception as exc:
            raise ModelError(
                f"downloading weights for {m.name!r} failed ({type(exc).__name__}: {exc}). "
                "Fix: pass a local weights file with --pretrained PATH."
            ) from None
    else:
        model = _create(m.name, config.data.img_size, False, m.stem, **kwargs)
        if m.pretrained:  # plain timm weights: they go to the backbone (its first layer only fits an rgb stem)
            notes = load_weights_file(backbone_of(model), m.pretrained, m.name)
    data_cfg = timm.data.resolve_model_data_config(backbone_of(model))
    spec = spec_of(config, data_cfg)
    return model, spec, notes


def spec_of(config: Config, data_cfg: dict) -> ImageSpec:
    d = config.data
    return ImageSpec(
        img_size=d.img_size,
        mean=tuple(float(x) for x in data_cfg["mean"]),
        std=tuple(float(x) for x in data_cfg["std"]),
        eval_crop=d.eval_crop,
        crop=d.crop,
        eval_grid=d.eval_grid if d.crop == "native" else 1,
        eval_reduce=d.eval_reduce,
    )


def plain_module(model: nn.Module) -> nn.Module:
    """The model under DDP and torch.compile wrappers, whose state dict has plain timm keys."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model
