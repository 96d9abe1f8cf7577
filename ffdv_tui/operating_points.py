"""The thresholds ``ffdv calibrate`` stored for a run's best checkpoint, for the predictions screen's ``c`` key."""

from __future__ import annotations

from pathlib import Path

from engine.contract.sidecar import SidecarError, read_sidecar


def stored_points(run_dir: Path | None) -> tuple[list[tuple[str, float]], str]:
    """(name, threshold on the model's own scores) of each stored point, and the split they were fitted on; nothing
    when the run's best checkpoint has no calibration (or no readable sidecar)."""
    calibration = _best_calibration(Path(run_dir)) if run_dir is not None else None
    thresholds = (calibration or {}).get("thresholds") or {}
    points = [(str(name), float(point["raw"])) for name, point in thresholds.items()
              if isinstance(point, dict) and isinstance(point.get("raw"), (int, float))]
    return points, str((calibration or {}).get("split", ""))


def _best_calibration(run_dir: Path) -> dict | None:
    """The calibration of best.json, or else of the newest sidecar marked best."""
    folder = run_dir / "checkpoints"
    candidates = [folder / "best.json", *sorted(folder.glob("*.json"), reverse=True)]
    for path in candidates:
        if path.name == "index.json" or not path.is_file():
            continue
        try:
            sidecar = read_sidecar(path.with_suffix(".safetensors"))
        except (SidecarError, OSError):
            continue
        if path.name == "best.json" or sidecar.is_best:
            return sidecar.calibration
    return None
