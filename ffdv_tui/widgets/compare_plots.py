"""The comparison screen's plots: one line per run in the run's own colour (curves by epoch or images seen; ROC).

Each plot holds plain series (name, xs, ys, colour) set once by the screen; the figure is built
once per size (textual-plotext would rebuild it in every render). The ROC's FPR axis is
logarithmic: the points are drawn at log10(FPR) on a linear axis with ticks labelled as
rates (plotext's own log scale mislabels its ticks), and FPR = 1e-3 is a vertical line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.text import Text
from textual_plotext import PlotextPlot

from ffdv_tui.widgets.curves import reduce

FPR_FLOOR_EXPONENT = -4  # FPR 0 and everything below 1e-4 are drawn at the left edge
MARK_COLOUR = (150, 150, 150)


@dataclass(frozen=True)
class Series:
    name: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    colour: tuple[int, int, int]


class SeriesPlot(PlotextPlot):
    """Lines of several runs; ``show`` sets them (and the axis names) and redraws."""

    def __init__(self, title: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.series: tuple[Series, ...] = ()
        self.xlabel = ""
        self.empty = "no data"
        self._figure: tuple[tuple, Text] | None = None

    def show(self, series: tuple[Series, ...], xlabel: str = "", empty: str = "no data") -> None:
        self.series, self.xlabel, self.empty = series, xlabel, empty
        self._figure = None
        self.refresh()

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title if any(s.xs for s in self.series) else f"{self.title}: {self.empty}")
        for s in self.series:
            if s.xs:
                xs, ys = reduce(list(s.xs), list(s.ys), max(2 * self.size.width, 20))
                plt.plot(xs, ys, color=s.colour, marker="braille")
        plt.xlabel(self.xlabel)

    def render(self) -> Text:
        key = (self.size.width, self.size.height, self.app.theme)
        if self._figure is None or self._figure[0] != key:
            self.draw()
            self._figure = (key, super().render())
        return self._figure[1]


def log_fpr(fpr: float) -> float:
    return math.log10(fpr) if fpr >= 10**FPR_FLOOR_EXPONENT else float(FPR_FLOOR_EXPONENT)


class RocPlot(SeriesPlot):
    """TPR against FPR on a log axis, FPR = 1e-3 (the competition's tie-break) marked."""

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if not self.series:
            plt.title(f"{self.title}: {self.empty}")
            return
        plt.title(self.title)
        for s in self.series:
            plt.plot([log_fpr(x) for x in s.xs], list(s.ys), color=s.colour, marker="braille")
        plt.vline(-3, MARK_COLOUR)
        ticks = list(range(FPR_FLOOR_EXPONENT, 1))
        plt.xticks(ticks, [{0: "1", -1: "0.1", -2: "0.01"}.get(t, f"1e{t}") for t in ticks])
        plt.xlim(FPR_FLOOR_EXPONENT, 0)
        plt.ylim(0, 1)
        plt.xlabel("FPR (log; | at 1e-3)")
