"""The predictions screen's choosers of what is shown: the next filter (f), slices (s), stored thresholds (c).

Kept apart so the screen stays short."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Select

from engine.contract.text import printable
from ffdv_tui.operating_points import stored_points
from ffdv_tui.predictions import FILTERS
from ffdv_tui.widgets.reliability import ReliabilityDiagram
from ffdv_tui.widgets.slices_table import SlicesTable


class SlicesAndPoints:
    """Actions of PredictionsScreen: slice by the next column, show a chosen slice, step through stored thresholds."""

    JUDGING_BINDINGS = (Binding("s", "next_slice", "Slice by"), Binding("c", "next_point", "Stored threshold"))
    _slice: frozenset[str] | None = None  # the image names of the chosen slice (SlicesTable)
    _point = -1  # the stored threshold last chosen with c

    def judging_row(self) -> ComposeResult:
        with Horizontal(id="pred-judge"):
            yield SlicesTable(id="slices", classes="pane")
            yield ReliabilityDiagram(id="reliability", classes="pane")

    def show_judging(self, threshold: float) -> None:
        """The slices at this threshold and the reliability diagram of the predictions shown."""
        self.query_one(SlicesTable).show(self.table_data.frame, threshold, self.source.images)
        self.query_one(ReliabilityDiagram).show(self.table_data.score, self.table_data.target)

    def shown_names(self) -> frozenset[str] | None:
        """The images the table may show: the hard examples (w) and the chosen slice; None: all of them."""
        hard = frozenset(map(str, self.hard.names)) if getattr(self, "hard", None) is not None else None
        if hard is None or self._slice is None:
            return hard if self._slice is None else self._slice
        return hard & self._slice

    def action_next_point(self) -> None:
        """The next threshold `ffdv calibrate` stored for the run's best checkpoint (at FPR 1e-3, 1e-2, 5e-2, balanced)."""
        points, split = stored_points(self.source.run_dir)
        if not points:
            self.notify("No stored thresholds: run `ffdv calibrate --checkpoint RUN --data VAL` first.",
                        severity="warning", markup=False)
            return
        self._point = (self._point + 1) % len(points)
        name, threshold = points[self._point]
        self.query_one("#threshold", Input).value = f"{threshold:.6f}"
        self.notify(printable(f"{name}: threshold {threshold:.4f} of the best checkpoint, fitted on {split}", 300),
                    markup=False)

    def action_next_filter(self) -> None:
        select = self.query_one("#filter", Select)
        keys = list(FILTERS)
        select.value = keys[(keys.index(select.value) + 1) % len(keys)]

    def action_next_slice(self) -> None:
        self.query_one(SlicesTable).next_column()

    def on_slices_table_selected(self, message: SlicesTable.Selected) -> None:
        self._slice = message.names
        self._recompute()
