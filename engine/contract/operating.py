"""Operating points stored by ``ffdv calibrate``: turning ``--threshold fpr:0.01`` into a number.

Torch-free, so the app's threshold explorer can offer the same points the engine uses.
"""

from __future__ import annotations

import math
from typing import Any

from engine.contract.errors import FfdvError


def threshold_keys(calibration: dict[str, Any] | None) -> list[str]:
    """The stored points, e.g. ["fpr:0.001", "fpr:0.01", "fpr:0.05", "balanced"]."""
    thresholds = (calibration or {}).get("thresholds")
    return list(thresholds) if isinstance(thresholds, dict) else []


def resolve_threshold(spec: str, calibration: dict[str, Any] | None, calibrated: bool, source: object) -> float:
    """A number in [0, 1], or a point stored in the sidecar (``fpr:0.01``, ``balanced``) on the score scale in use
    (``calibrated``: after the temperature)."""
    try:
        value = float(spec)
    except ValueError:
        value = None
    if value is not None:
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise FfdvError(f"--threshold {spec}: a threshold must be from 0 to 1 (or a stored point such as fpr:0.01).")
        return value
    keys = threshold_keys(calibration)
    if not keys:
        raise FfdvError(f"{source}: --threshold {spec} needs the checkpoint's calibration, and its sidecar has none. "
                        "Fix: run `ffdv calibrate --checkpoint C --data VAL` first, or pass a number.")
    wanted = spec
    if spec.startswith("fpr:"):
        try:
            wanted = f"fpr:{float(spec[4:]):g}"
        except ValueError:
            wanted = spec
    if wanted not in keys:
        raise FfdvError(f"--threshold {spec}: not a stored point of {source} (it has: {', '.join(keys)}). "
                        "Fix: pass one of those, or a number from 0 to 1.")
    point = calibration["thresholds"][wanted]
    value = point.get("calibrated" if calibrated else "raw") if isinstance(point, dict) else None
    if not isinstance(value, (int, float)):
        raise FfdvError(f"{source}: the stored point {wanted} has no threshold. Fix: run ffdv calibrate again.")
    return float(value)
