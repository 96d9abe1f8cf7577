"""Live curves: training loss per step (raw, faint, and smoothed) with validation loss; metrics per epoch.

textual-plotext (plotext < 6) draws them: braille lines, labelled axes and a legend
in any terminal, with deterministic output for snapshot tests. Points are reduced to
about two per column before drawing, so a 100-epoch run costs what a short one does.
"""

from __future__ import annotations

from collections import OrderedDict

from rich.text import Text
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from ffdv_tui.run_snapshot import RunSnapshot

FAINT = (110, 110, 110)
FIGURES_KEPT = 6  # per plot: the runs flipped between
LEGEND_MIN_HEIGHT = 14  # below this a legend would cover the lines: the title names the series instead
METRIC_SERIES = (("auc", "AUC", "green"), ("accuracy", "Acc", "cyan"), ("f1", "F1", "magenta"))


def reduce(xs: list[float], ys: list[float], buckets: int) -> tuple[list[float], list[float]]:
    """Mean of consecutive points so that at most ``buckets`` remain."""
    if len(xs) <= buckets or buckets < 1:
        return list(xs), list(ys)
    size = len(xs) / buckets
    out_x, out_y = [], []
    for b in range(buckets):
        lo, hi = int(b * size), max(int((b + 1) * size), int(b * size) + 1)
        out_x.append(sum(xs[lo:hi]) / (hi - lo))
        out_y.append(sum(ys[lo:hi]) / (hi - lo))
    return out_x, out_y


def smooth(values: list[float], weight: float) -> list[float]:
    """Exponential moving average (TensorBoard's smoothing), debiased at the start."""
    out, avg = [], 0.0
    for i, value in enumerate(values, 1):
        avg = weight * avg + (1 - weight) * value
        out.append(avg / (1 - weight**i))
    return out


def integer_ticks(low: float, high: float, count: int = 5) -> list[int]:
    """A few whole-number ticks across [low, high] (steps and epochs are counts)."""
    low, high = int(low), int(round(high))
    if high <= low:
        return [low]
    step = max(1, -(-(high - low) // (count - 1)))
    return list(range(low, high + 1, step))


class CachedPlot(PlotextPlot):
    """A plot of one run's snapshot, built once per snapshot and size, not on every repaint.

    textual-plotext rebuilds the figure (and parses its ANSI) in every ``render``; a
    dialog opening over the workbench, or another widget changing, would pay that for
    both plots on every frame. The last few figures are kept: snapshots never change, so
    going back to a run that did not move since (a finished one, say) draws nothing.
    """

    run: reactive[RunSnapshot | None] = reactive(None, layout=False, repaint=False, init=False)
    _figures: OrderedDict[tuple, Text] | None = None

    def draw(self, run: RunSnapshot | None) -> None:
        raise NotImplementedError

    def watch_run(self, run: RunSnapshot | None) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self.refresh()

    def render(self) -> Text:
        if self._figures is None:
            self._figures = OrderedDict()
        key = (self.run, self.size.width, self.size.height, self.app.theme)
        figure = self._figures.get(key)
        if figure is None:
            self.draw(self.run)  # points per column depend on the size
            figure = self._figures[key] = super().render()
            while len(self._figures) > FIGURES_KEPT:
                self._figures.popitem(last=False)
        self._figures.move_to_end(key)
        return figure


class LossPlot(CachedPlot):
    """Training loss by step; validation loss at the end of each epoch."""

    def draw(self, run: RunSnapshot | None) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        legend = self.size.height >= LEGEND_MIN_HEIGHT
        plt.title("loss" if legend else "train · val loss")
        if run is not None:
            xs, ys = reduce(run.loss_steps, run.loss_values, max(2 * self.size.width, 20))
            if xs:
                plt.plot(xs, ys, color=FAINT, marker="braille")
                plt.plot(xs, smooth(ys, 0.8 if len(ys) > 20 else 0.5), color="orange", marker="braille",
                         label="train" if legend else None)
            val = [(v.epoch * run.steps_per_epoch, v.metrics.get("loss")) for v in run.validations]
            val = [(x, y) for x, y in val if isinstance(y, (int, float))]
            if val:
                plt.plot([x for x, _ in val], [y for _, y in val], color="cyan", marker="dot",
                         label="val" if legend else None)
            all_x = xs + [x for x, _ in val]
            if all_x:
                plt.xticks(integer_ticks(min(all_x), max(all_x), max(3, self.size.width // 8)))
            plt.xlabel("step")


class MetricPlot(CachedPlot):
    """Validation AUC, accuracy and F1 by epoch."""

    def draw(self, run: RunSnapshot | None) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        legend = self.size.height >= LEGEND_MIN_HEIGHT
        plt.title("validation" if legend else "AUC · Acc · F1")
        if run is not None and run.validations:
            rows = run.validations
            for key, label, colour in METRIC_SERIES:
                points = [(v.epoch, v.metrics.get(key)) for v in rows]
                points = [(x, y) for x, y in points if isinstance(y, (int, float))]
                if points:
                    plt.plot([x for x, _ in points], [y for _, y in points], color=colour, marker="braille",
                             label=label if legend else None)
            plt.xlabel("epoch")
            epochs = [v.epoch for v in rows]
            plt.xticks(integer_ticks(min(epochs), max(epochs), max(2, self.size.width // 8)))
