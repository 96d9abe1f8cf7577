"""One row per validation of the selected run: AUC first, the best row marked; a flagged validation split said below.

Switching runs refills the table (a hundred rows for a 100-epoch run). DataTable
measures every new cell through the console to size its columns, which was most of
the cost of showing another run; here the column widths are counted from the strings
(the same widths) and the cells tell DataTable they need no measuring.
"""

from __future__ import annotations

import re

from rich.cells import cell_len
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import DataTable

from engine.contract.fmt import fmt_metric
from engine.contract.protocol import METRIC_LABELS
from ffdv_tui.run_snapshot import RunSnapshot

COLUMNS = {"epoch": "epoch", **METRIC_LABELS}


class Cell(Text):
    """Text in a column whose width is already known (DataTable skips measuring a cell without this method)."""

    __rich_measure__ = None


def leak_note(warning: str) -> str:
    """The pane's subtitle for a run whose validation split the leakage audit flagged (only digits come from the event)."""
    if not warning:
        return ""
    share = re.search(r"(\d{1,3})% of its images", warning)
    return f"⚠ leaky validation: {share.group(1) if share else 'some'}% near-copies of training images"


class MetricsTable(DataTable):
    run: reactive[RunSnapshot | None] = reactive(None, layout=False, repaint=False, init=False)

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self._shown: tuple = ()
        self._fill((), None)

    def watch_run(self, run: RunSnapshot | None) -> None:
        self.border_subtitle = leak_note(run.leaky_validation if run is not None else "")
        rows = run.validations if run is not None else ()
        best = run.best_epoch if run is not None else None
        signature = (run.name if run else None, best, rows)
        if signature == self._shown:
            return
        self._shown = signature
        self._fill(rows, best)

    def _fill(self, rows, best: int | None) -> None:
        table = []
        for row in rows:
            style = "bold green" if row.epoch == best else ""
            label = f"{row.epoch}{' ★' if row.epoch == best else ''}"
            table.append((style, [label] + [fmt_metric(row.metrics.get(key)) for key in METRIC_LABELS]))
        widths = [cell_len(label) for label in COLUMNS.values()]
        for _, cells in table:
            widths = [max(width, cell_len(cell)) for width, cell in zip(widths, cells)]
        self.clear(columns=True)
        for (key, label), width in zip(COLUMNS.items(), widths):
            self.add_column(label, key=key, width=width)
        for (style, cells), row in zip(table, rows):
            self.add_row(Cell(cells[0], style=style), *(Cell(c, style=style, justify="right") for c in cells[1:]),
                         key=str(row.epoch))
        if rows:
            self.move_cursor(row=len(rows) - 1)
