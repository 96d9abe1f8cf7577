"""How numbers read in the console and in the app (torch-free, shared by both)."""

from __future__ import annotations

from typing import Any

from engine.contract.text import printable


def fmt_metric(value: Any) -> str:
    """Four decimals; an undefined metric (None) is a dash, never a made-up number."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return printable(value, 40)  # not a number: a damaged file's text, shown escaped and short


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_bytes(count: float | None) -> str:
    if count is None:
        return "–"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(count) < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"


def fmt_count(count: int, noun: str) -> str:
    """``1 epoch``, ``3 epochs``: a count with its noun, singular for one."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
