"""One row per validation of the selected run: AUC first, the best row marked; a flagged validation split said below."""

from __future__ import annotations

import re

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import DataTable

from engine.contract.fmt import fmt_metric
from engine.contract.protocol import METRIC_LABELS
from ffdv_tui.run_snapshot import RunSnapshot


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
        self.add_column("epoch", key="epoch")
        for key, label in METRIC_LABELS.items():
            self.add_column(label, key=key)
        self._shown: tuple = ()

    def watch_run(self, run: RunSnapshot | None) -> None:
        self.border_subtitle = leak_note(run.leaky_validation if run is not None else "")
        rows = run.validations if run is not None else ()
        best = run.best_epoch if run is not None else None
        signature = (run.name if run else None, best, rows)
        if signature == self._shown:
            return
        self._shown = signature
        self.clear()
        for row in rows:
            is_best = row.epoch == best
            style = "bold green" if is_best else ""
            label = Text(f"{row.epoch}{' ★' if is_best else ''}", style=style)
            cells = [Text(fmt_metric(row.metrics.get(key)), style=style, justify="right") for key in METRIC_LABELS]
            self.add_row(label, *cells, key=str(row.epoch))
        if rows:
            self.move_cursor(row=len(rows) - 1)
