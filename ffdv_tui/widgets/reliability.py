"""A reliability diagram: per bin of the score, the share of fakes (bars) against the mean score (dots).

A calibrated detector's bars reach its dots (the diagonal); bars below the dots in the high
bins mean overconfidence. The title gives the ECE (engine.data.reliability, torchmetrics'
binning).
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.widgets import Static

from engine.data.reliability import reliability

LEVELS = 6  # rows of the chart


def diagram(scores, targets, rows: int = LEVELS) -> Text:
    """The chart as text: a two-cell column per bin, bars of the fake share, a dot at the mean score."""
    bins = reliability(scores, targets)
    if bins.ece is None:
        return Text("reliability: no labelled images", style="dim")
    out = Text.assemble((f"ECE {bins.ece:.4f}", "bold"), " · ", ("█", "cyan"), " fakes ", ("•", "bold yellow"),
                        " score\n")
    for row in range(rows, 0, -1):
        low, high = (row - 1) / rows, row / rows
        for count, share, mean in zip(bins.counts, bins.fake_share, bins.mean_score):
            if not count:
                out.append("  ")
            elif share >= high - 0.5 / rows:
                out.append("█" if low <= mean < high else "█ ", style="cyan")
                if low <= mean < high:
                    out.append("•", style="bold yellow")
            elif low <= mean < high:
                out.append(" •", style="bold yellow")
            else:
                out.append("  ")
        out.append("\n")
    out.append("0" + " score → ".center(max(2 * len(bins.counts) - 2, 0)) + "1", style="dim")
    return out


class ReliabilityDiagram(Static):
    """The reliability diagram of the predictions the screen shows."""

    DEFAULT_CSS = """
    ReliabilityDiagram { width: 36; height: 100%; padding: 0 1; }
    """

    def show(self, scores: np.ndarray, targets: np.ndarray) -> None:
        self.update(diagram(scores, targets))
