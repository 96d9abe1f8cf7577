"""One row per validation of the selected run: AUC first, the best row marked; a flagged validation split said below.

Showing another run must be cheap (it is the workbench's most frequent key). Textual's
DataTable added, measured and laid out every row again, a hundred for a 100-epoch run;
this is a FrameTable (draws only the rows in view): switching runs hands it the run's
columns of strings, formatted once per change of its validations (kept for the last few
runs), and only the four or five rows in view are drawn.
"""

from __future__ import annotations

import re
from collections import OrderedDict

from rich.cells import cell_len
from textual.reactive import reactive

from engine.contract.fmt import fmt_metric
from engine.contract.protocol import METRIC_LABELS
from ffdv_tui.run_snapshot import RunSnapshot
from ffdv_tui.widgets.frame_table import Column, FrameTable

COLUMNS = {"epoch": "epoch", **METRIC_LABELS}
BEST_STYLE = "bold green"
TABLES_KEPT = 6  # the runs flipped between


def leak_note(warning: str) -> str:
    """The pane's subtitle for a run whose validation split the leakage audit flagged (only digits come from the event)."""
    if not warning:
        return ""
    share = re.search(r"(\d{1,3})% of its images", warning)
    return f"⚠ leaky validation: {share.group(1) if share else 'some'}% near-copies of training images"


def validation_columns(run: RunSnapshot | None) -> tuple[list[Column], list[list[str]], list[str]]:
    """The table of ``run``: its columns (sized to the widest cell), their cells as text, and the epochs as row keys."""
    rows = run.validations if run is not None else ()
    best = run.best_epoch if run is not None else None
    cells = [[f"{row.epoch}{' ★' if row.epoch == best else ''}" for row in rows]]
    cells += [[fmt_metric(row.metrics.get(key)) for row in rows] for key in METRIC_LABELS]
    columns = [Column(key, label, max([cell_len(label), *map(cell_len, texts)]), justify="left" if key == "epoch" else "right")
               for (key, label), texts in zip(COLUMNS.items(), cells)]
    return columns, cells, [str(row.epoch) for row in rows]


class MetricsTable(FrameTable):
    zebra_stripes = True
    run: reactive[RunSnapshot | None] = reactive(None, layout=False, repaint=False, init=False)

    def __init__(self, **kwargs) -> None:
        columns, _, _ = validation_columns(None)
        super().__init__(columns, **kwargs)
        self._best_row = -1
        self._tables: OrderedDict[str | None, tuple] = OrderedDict()  # run name -> (signature, table): runs flipped between
        self._shown: tuple | None = None

    def watch_run(self, run: RunSnapshot | None) -> None:
        self.border_subtitle = leak_note(run.leaky_validation if run is not None else "")
        name = run.name if run is not None else None
        signature = (name, run.best_epoch, run.validations) if run is not None else ()
        if signature == self._shown:
            return  # the same rows: keep the cursor where the user put it
        self._shown = signature
        kept = self._tables.get(name)
        if kept is None or kept[0] != signature:
            kept = self._tables[name] = (signature, validation_columns(run))
            while len(self._tables) > TABLES_KEPT:
                self._tables.popitem(last=False)
        self._tables.move_to_end(name)
        self.columns, cells, epochs = kept[1]
        best = run.best_epoch if run is not None else None
        self._best_row = next((i for i, row in enumerate(run.validations) if row.epoch == best), -1) if run else -1
        self.set_rows(cells, epochs, row=len(epochs) - 1)

    def row_style(self, row: int) -> str:
        return BEST_STYLE if row == self._best_row else ""

    def row_at(self, key: str) -> list[str]:
        """The cells of the validation of epoch ``key``, as shown."""
        row = list(self._index).index(key)
        return [str(self.value_at(row, column.key)) for column in self.columns]
