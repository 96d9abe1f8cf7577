"""A histogram of the scores of the real and of the fake images, with the threshold drawn: how well they separate."""

from __future__ import annotations

import numpy as np
from textual_plotext import PlotextPlot

BINS = 20


def class_histograms(score: np.ndarray, target: np.ndarray, bins: int = BINS) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(bin centres over [0, 1], counts of real and of fake images per bin); unlabelled images are left out."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = {name: np.histogram(np.clip(score[target == value], 0.0, 1.0), edges)[0]
              for value, name in ((0, "real"), (1, "fake"))}
    return (edges[:-1] + edges[1:]) / 2.0, counts


class ScoreHistogram(PlotextPlot):
    """Counts per score bin, real and fake side by side, the threshold a vertical line."""

    def show(self, score: np.ndarray, target: np.ndarray, threshold: float) -> None:
        centres, counts = class_histograms(np.asarray(score, float), np.asarray(target, int))
        self.counts = counts
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(f"fake score by true class · threshold {threshold:.3f}")
        plt.multiple_bar([f"{c:.2f}" for c in centres], [counts["real"].tolist(), counts["fake"].tolist()],
                         labels=["real", "fake"], color=["cyan", "orange"])
        bins = len(centres)  # bar i (from 1) covers scores ((i - 1) / bins, i / bins]: score s lies at s * bins + 0.5
        ticks = [0.0, 0.25, 0.5, 0.75, 1.0]  # fixed: plotext's own choice moves with the figure's size
        plt.xticks([t * bins + 0.5 for t in ticks], [f"{t:g}" for t in ticks])
        plt.vertical_line(threshold * bins + 0.5, color="red")
        plt.xlabel("fake score")
        self.refresh()
