"""The checkpoint sidecar (``epoch-NNN.json``): what a weights file is, in one typed record.

Torch-free: the engine writes it beside every ``.safetensors`` file, and predict,
evaluate and the app read it back. A sidecar is a file a user may edit or damage,
so decoding checks every field's type and range (the input size and crop by the
config's own rules) and turns a bad one into a ``SidecarError`` that lists each
problem with its fix, never a TypeError later on. ``format`` is the version: a
newer engine's unknown fields are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.contract.config import CROP_MODES, EVAL_CROP_RANGE, EVAL_GRID_RANGE, EVAL_REDUCES, IMG_SIZE_RANGE, STEMS
from engine.contract.errors import CheckpointError

SIDECAR_FORMAT = 1


class SidecarError(CheckpointError):
    """A sidecar that is missing, unreadable or has fields of the wrong kind; ``problems`` lists them."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


@dataclass
class Sidecar:
    """Everything needed to use a weights file without its run: model, input, normalisation, and its scores."""

    model: str
    img_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    eval_crop: float = 1.0
    crop: str = "resize"  # data.crop: "native" scores eval_grid x eval_grid crops at full resolution
    eval_grid: int = 1
    eval_reduce: str = "mean"
    stem: str = "rgb"  # model.stem: "srm" / "rgb+srm" put the fixed SRM residual stem before the timm model
    sample_weights: dict[str, int] = field(default_factory=dict)  # data.sample_weights: up-weighted training images
    num_classes: int = 2
    classes: list[str] = field(default_factory=lambda: ["real", "fake"])
    weights: str = "model"  # "ema" or "model": which weights were saved
    metrics: dict[str, Any] | None = None  # the validation metrics at this checkpoint, None before any
    run: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    # set by the checkpoint store when it writes the file
    epoch: int | None = None
    step: int | None = None
    reason: str = ""
    best_metric: str = "auc"
    metric_value: float | None = None
    is_best: bool = False
    created: float | None = None
    format: int = SIDECAR_FORMAT
    # ffdv calibrate: temperature, ece_before/after, thresholds {"fpr:0.01": {"raw", "calibrated", ...}}, split
    calibration: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # fields a newer engine wrote

    def data_root(self) -> str | None:
        data = self.config.get("data") if isinstance(self.config, dict) else None
        root = data.get("root") if isinstance(data, dict) else None
        return root if isinstance(root, str) else None


FIELDS = tuple(f.name for f in dataclasses.fields(Sidecar) if f.name != "extra")


def encode_sidecar(sidecar: Sidecar) -> dict[str, Any]:
    """The JSON object written to disk (unknown fields of a newer format kept)."""
    data = {name: getattr(sidecar, name) for name in FIELDS}
    for key in ("mean", "std"):
        if data[key] is not None:
            data[key] = list(data[key])
    return {**sidecar.extra, **data}


# ---------------------------------------------------------------- decoding


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


def _triple(value: Any, positive: bool) -> bool:
    return (isinstance(value, list) and len(value) == 3 and all(_is_number(v) for v in value)
            and (not positive or all(v > 0 for v in value)))


def _metric_value(value: Any) -> bool:
    return value is None or _is_number(value) or (isinstance(value, list))


def _check(data: dict[str, Any]) -> list[str]:
    """Every field that is there but of the wrong kind, as 'field: what is wrong (what it must be)'."""
    problems = []
    lo, hi = IMG_SIZE_RANGE
    crop_lo, crop_hi = EVAL_CROP_RANGE

    def bad(name: str, want: str) -> None:
        problems.append(f"{name} is {data[name]!r}; it must be {want}")

    if not isinstance(data.get("model"), str) or not data.get("model", "").strip():
        problems.append(f"model is {data.get('model')!r}; it must name a timm model, e.g. 'resnet10t'")
    if data.get("img_size") is not None and not (_is_int(data["img_size"]) and lo <= data["img_size"] <= hi):
        bad("img_size", f"a whole number of pixels from {lo} to {hi} (the rule of data.img_size)")
    if data.get("eval_crop") is not None and not (_is_number(data["eval_crop"]) and crop_lo <= data["eval_crop"] <= crop_hi):
        bad("eval_crop", f"a number from {crop_lo} to {crop_hi} (the rule of data.eval_crop)")
    for name, choices in (("crop", CROP_MODES), ("eval_reduce", EVAL_REDUCES), ("stem", STEMS)):
        if data.get(name) is not None and data[name] not in choices:
            bad(name, f"one of {', '.join(choices)} (the rule of {'model' if name == 'stem' else 'data'}.{name})")
    grid_lo, grid_hi = EVAL_GRID_RANGE
    if data.get("eval_grid") is not None and not (_is_int(data["eval_grid"]) and grid_lo <= data["eval_grid"] <= grid_hi):
        bad("eval_grid", f"a whole number from {grid_lo} to {grid_hi} (the rule of data.eval_grid)")
    if data.get("mean") is not None and not _triple(data["mean"], positive=False):
        bad("mean", "three numbers, one per colour channel")
    if data.get("std") is not None and not _triple(data["std"], positive=True):
        bad("std", "three positive numbers, one per colour channel")
    metrics = data.get("metrics")
    if metrics is not None and not (isinstance(metrics, dict) and all(_metric_value(v) or isinstance(v, dict)
                                                                          for v in metrics.values())):
        bad("metrics", "an object of metric names and numbers (or null)")
    for name in ("epoch", "step", "num_classes", "format"):
        if data.get(name) is not None and not (_is_int(data[name]) and data[name] >= 0):
            bad(name, "a whole number, 0 or more")
    if data.get("metric_value") is not None and not _is_number(data["metric_value"]):
        bad("metric_value", "a number or null")
    if data.get("created") is not None and not _is_number(data["created"]):
        bad("created", "a time in seconds or null")
    if "is_best" in data and not isinstance(data["is_best"], bool):
        bad("is_best", "true or false")
    for name in ("weights", "reason", "best_metric", "run"):
        if name in data and not isinstance(data[name], str):
            bad(name, "a string")
    for name in ("config", "versions"):
        if name in data and not isinstance(data[name], dict):
            bad(name, "an object")
    calibration = data.get("calibration")
    if calibration is not None and not (isinstance(calibration, dict) and _is_number(calibration.get("temperature"))
                                        and calibration["temperature"] > 0
                                        and isinstance(calibration.get("thresholds", {}), dict)):
        bad("calibration", "an object with a positive temperature and thresholds (written by ffdv calibrate)")
    if "classes" in data and not (isinstance(data["classes"], list) and all(isinstance(c, str) for c in data["classes"])):
        bad("classes", "a list of class names")
    return problems


def decode_sidecar(data: Any, source: Path | str = "sidecar") -> Sidecar:
    """A Sidecar from a parsed JSON value; raise SidecarError naming every bad field and the fix."""
    if not isinstance(data, dict):
        raise SidecarError(f"{source}: not a ffdv checkpoint sidecar (a JSON object is expected, "
                           f"found {type(data).__name__})", ["not a JSON object"])
    problems = _check(data)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise SidecarError(f"{source}: the checkpoint's sidecar has fields of the wrong kind:\n{lines}\n"
                           "Fix: correct those fields (or delete the sidecar and pass --model and --img-size).", problems)
    known = {name: data[name] for name in FIELDS if name in data and data[name] is not None}
    for key in ("mean", "std"):
        if key in known:
            known[key] = tuple(float(v) for v in known[key])
    if "eval_crop" in known:
        known["eval_crop"] = float(known["eval_crop"])
    if "metric_value" in known:
        known["metric_value"] = float(known["metric_value"])
    extra = {k: v for k, v in data.items() if k not in FIELDS}
    return Sidecar(**known, extra=extra)


def sidecar_path(weights: Path | str) -> Path:
    return Path(weights).with_suffix(".json")


def read_sidecar(weights: Path | str) -> Sidecar:
    """The sidecar beside a ``.safetensors`` file; SidecarError (with the fix) when missing or damaged."""
    path = sidecar_path(weights)
    if not path.is_file():
        raise SidecarError(
            f"{path}: the checkpoint's sidecar is missing, so its model name and input size are unknown. "
            "Fix: pass --model NAME and --img-size N.", ["missing"])
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SidecarError(f"{path}: unreadable sidecar ({exc})", [f"unreadable: {exc}"]) from None
    return decode_sidecar(data, path)
