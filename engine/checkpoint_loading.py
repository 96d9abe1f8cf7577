"""Loading a checkpoint to use it: the sidecar's model, built and filled strictly, and its input spec.

Evaluate, predict and the matrix share this one way: the sidecar names the model, input
size, normalisation, crops and stem; a lost sidecar can be stood in for with
``--model``, or by what a timm ``train.py`` checkpoint says (``arch``, ``args.img_size``); the
stem the sidecar names must be the one the weights were saved with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
import torch

from engine.checkpoint_store import resolve_checkpoint
from engine.contract.config import IMG_SIZE_RANGE, Config
from engine.contract.errors import CheckpointError, ModelError
from engine.contract.sidecar import Sidecar, SidecarError, read_sidecar, sidecar_path
from engine.device import DeviceSetup, setup_device
from engine.loader import ImageSpec
from engine.models import build_network, check_model_name, read_checkpoint, read_state_dict
from engine.stems import STEM_KEY, backbone_of, stem_of_state


@dataclass
class LoadedCheckpoint:
    model: torch.nn.Module
    spec: ImageSpec
    sidecar: Sidecar
    path: Path


def load_checkpoint(path: Path | str, setup: DeviceSetup, model_name: str | None = None,
                    img_size: int | None = None) -> LoadedCheckpoint:
    """Build the sidecar's model and load the weights strictly; ``model_name`` stands in for a lost sidecar."""
    weights_path = resolve_checkpoint(path)
    lo, hi = IMG_SIZE_RANGE
    if img_size is not None and not lo <= img_size <= hi:
        raise CheckpointError(f"--img-size {img_size}: the input size must be from {lo} to {hi} pixels "
                              "(the rule of data.img_size). Fix: pass the size the model was trained at.")
    lost, state, train_py = False, None, None
    try:
        sidecar = read_sidecar(weights_path)
    except SidecarError as missing:
        if weights_path.suffix != ".safetensors":  # weights from elsewhere: timm's train.py names its model (arch)
            try:
                state, train_py = read_checkpoint(weights_path)
            except ModelError as exc:
                raise CheckpointError(str(exc)) from None
        if not model_name and train_py is None:
            raise missing from None
        size = img_size or (train_py.img_size if train_py is not None else 224)  # None: the model's own size
        sidecar, lost = Sidecar(model=model_name or train_py.arch, img_size=size), True
    name = model_name or sidecar.model
    check_model_name(name)
    try:  # ffdv's safetensors, or weights trained elsewhere (a state dict read with weights_only=True)
        state = state if state is not None else read_state_dict(weights_path)
    except ModelError as exc:
        raise CheckpointError(str(exc)) from None
    stem = check_stem(weights_path, sidecar, state, from_sidecar=not lost)
    model = build_network(name, stem, pretrained=False)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise CheckpointError(
            f"{weights_path}: the weights do not fit model {name!r} ({' '.join(first)[:300]}). "
            "Fix: check the sidecar's model name, or pass --model with the right one."
        ) from None
    data_cfg = timm.data.resolve_model_data_config(backbone_of(model))
    spec = ImageSpec(
        img_size=int(img_size or sidecar.img_size or data_cfg["input_size"][-1]),
        mean=tuple(sidecar.mean or data_cfg["mean"]),
        std=tuple(sidecar.std or data_cfg["std"]),
        eval_crop=sidecar.eval_crop,
        crop=sidecar.crop,
        eval_grid=sidecar.eval_grid if sidecar.crop == "native" else 1,
        eval_reduce=sidecar.eval_reduce,
    )
    model.to(setup.device)
    if setup.channels_last:
        model.to(memory_format=torch.channels_last)
    return LoadedCheckpoint(model, spec, sidecar, weights_path)


def check_stem(weights_path: Path, sidecar: Sidecar, state: dict[str, torch.Tensor], from_sidecar: bool) -> str:
    """The stem to build: the sidecar's, which must be the one the weights were saved with. Without a sidecar
    (lost, or weights from elsewhere) the weights tell."""
    found = stem_of_state(state)
    if not from_sidecar:
        return found
    if sidecar.stem != found:
        has = f"the SRM residual stem ({STEM_KEY}) of a {found!r} model" if found != "rgb" else "no SRM stem (plain timm keys)"
        raise CheckpointError(
            f"{weights_path}: its sidecar says model.stem = {sidecar.stem!r}, but the weights have {has}. "
            f"Fix: set \"stem\": \"{found}\" in {sidecar_path(weights_path).name}, or pair the weights with their own sidecar."
        )
    return found


def inference_setup(device: str, amp: str = "auto") -> DeviceSetup:
    config = Config()
    config.train.device = device
    config.train.amp = amp
    return setup_device(config)
