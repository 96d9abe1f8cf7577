"""The predictions' score histogram per class, over the predictions screen (h; Escape closes it)."""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical

from ffdv_tui.screens.dialog import DialogScreen
from ffdv_tui.widgets.score_histogram import ScoreHistogram


class ScoreHistogramScreen(DialogScreen[None]):
    DEFAULT_CSS = """
    ScoreHistogramScreen > #dialog {
        width: 90%;
        height: 80%;
    }
    ScoreHistogramScreen ScoreHistogram {
        height: 1fr;
    }
    """
    BINDINGS = [Binding("escape,h", "dismiss", "Close", tooltip="Back to the predictions")]

    def __init__(self, score: np.ndarray, target: np.ndarray, threshold: float) -> None:
        super().__init__()
        self.score, self.target, self.threshold = score, target, threshold

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield ScoreHistogram()

    def on_mount(self) -> None:
        self.query_one(ScoreHistogram).show(self.score, self.target, self.threshold)
