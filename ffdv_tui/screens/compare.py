"""Marked runs side by side: overlaid curves, the table of what differs and the best of each metric, ROC curves.

Each run keeps one colour everywhere on the screen (legend, table, every plot). The runs are
read from their folders in a worker (``engine.contract.runsummary``, the same as ``ffdv
compare``, built from the snapshots the watcher already folded: no log is read again), so a comparison of
live runs shows them as of the moment it opened. The table
shows only the settings that differ; ``b`` pins the row's run as the baseline (the others
become differences from it, and the ROC curves overlaid are those on its validation split);
``s`` sorts by the column under the cursor; ``x`` switches the curves between epochs and images seen.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from engine.contract.compare import Comparison, RocSet, better_is_lower, compare, compare_table, roc_set
from engine.contract.errors import FfdvError
from engine.contract.runsummary import RunSummary
from engine.contract.text import printable
from ffdv_tui.run_snapshot import RunSnapshot
from ffdv_tui.widgets.compare_plots import RocPlot, Series, SeriesPlot
from ffdv_tui.widgets.key_bar import KeyBar

PALETTE = ((235, 100, 100), (90, 165, 245), (110, 205, 110), (235, 175, 70), (195, 120, 225),
           (70, 205, 205), (245, 130, 185), (185, 185, 90), (150, 150, 245), (215, 215, 215))


def run_colour(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def style_of(colour: tuple[int, int, int]) -> str:
    return "bold rgb({},{},{})".format(*colour)


def curve_series(runs: tuple[RunSummary, ...], colours: dict[str, tuple[int, int, int]], images: bool
                 ) -> tuple[tuple[Series, ...], tuple[Series, ...], tuple[Series, ...]]:
    """Train loss, validation loss and AUC of every run, by epoch or by images seen (epoch x training images)."""
    def x(run: RunSummary, epoch: int) -> float:
        return epoch * run.images_per_epoch if images and run.images_per_epoch else epoch

    def series(run: RunSummary, points: list[tuple[int, float]]) -> Series:
        return Series(run.name, tuple(x(run, e) for e, _ in points), tuple(v for _, v in points), colours[run.name])

    train = tuple(series(r, sorted(r.train_loss.items())) for r in runs)
    val = tuple(series(r, [(e, m["loss"]) for e, m in sorted(r.metrics.items()) if "loss" in m]) for r in runs)
    auc = tuple(series(r, [(e, m["auc"]) for e, m in sorted(r.metrics.items()) if "auc" in m]) for r in runs)
    return train, val, auc


class CompareScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", tooltip="Back to the runs"),
        Binding("x", "toggle_x", "Epochs/images", tooltip="The curves' x axis: epochs, or images seen"),
        Binding("s", "sort", "Sort", tooltip="Sort the table by the column under the cursor (again: the other way)"),
        Binding("b", "baseline", "Baseline",
                tooltip="Pin the run on the cursor's row as the baseline: the others show differences (again: unpin)"),
    ]

    class Loaded(Message):
        def __init__(self, comparison: Comparison, rocs: RocSet) -> None:
            super().__init__()
            self.comparison = comparison
            self.rocs = rocs

    class RocsRead(Message):
        def __init__(self, rocs: RocSet) -> None:
            super().__init__()
            self.rocs = rocs

    class Failed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, runs: list[RunSnapshot]) -> None:
        super().__init__()
        self.runs = list(runs)  # frozen snapshots: the worker reads them
        self.comparison: Comparison | None = None
        self.rocs: RocSet | None = None
        self.colours: dict[str, tuple[int, int, int]] = {}
        self.baseline: str | None = None
        self.sort: str | None = None
        self.descending = False
        self.by_images = False
        self.row_names: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text("Reading the runs…"), id="compare-legend")
        with Horizontal(id="compare-curves"):
            yield SeriesPlot("train loss", id="compare-train")
            yield SeriesPlot("val loss", id="compare-val")
            yield SeriesPlot("AUC", id="compare-auc")
        with Horizontal(id="compare-bottom"):
            yield DataTable(id="compare-table", cursor_type="cell", zebra_stripes=False, classes="pane")
            yield RocPlot("ROC of the best validation", id="compare-roc")
        yield Static(id="compare-notes")
        yield KeyBar()

    def on_mount(self) -> None:
        self.app.sub_title = f"compare · {len(self.runs)} runs"
        self.query_one("#compare-table", DataTable).border_title = "runs"
        self._load()

    @property
    def loaded(self) -> bool:
        """The runs are read and drawn (tests wait for this)."""
        return self.comparison is not None and self.rocs is not None

    @work(thread=True, exclusive=True, group="compare-load")
    def _load(self) -> None:
        try:
            comparison = compare([run.summary() for run in self.runs])
            self.post_message(self.Loaded(comparison, roc_set(comparison)))
        except (FfdvError, OSError) as exc:
            self.post_message(self.Failed(str(exc)))

    @work(thread=True, exclusive=True, group="compare-roc")
    def _read_rocs(self, comparison: Comparison, baseline: str | None) -> None:
        self.post_message(self.RocsRead(roc_set(comparison, baseline)))

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.query_one("#compare-legend", Static).update(Text(printable(message.error, 2000), style="red"))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        comparison = self.comparison = message.comparison
        self.colours = {run.name: run_colour(i) for i, run in enumerate(comparison.runs)}
        legend = Text()
        for run in comparison.runs:
            legend.append("━━ ", style=style_of(self.colours[run.name]))
            legend.append(printable(run.name, 60) + "   ", style=style_of(self.colours[run.name]))
        self.query_one("#compare-legend", Static).update(legend)
        self._show_curves()
        self._show_table()
        self._show_rocs(message.rocs)
        self.query_one("#compare-table", DataTable).focus()

    @on(RocsRead)
    def _rocs_read(self, message: RocsRead) -> None:
        self._show_rocs(message.rocs)

    # ------------------------------------------------------------ drawing

    def _show_curves(self) -> None:
        if self.comparison is None:
            return
        train, val, auc = curve_series(self.comparison.runs, self.colours, self.by_images)
        unit = "images seen" if self.by_images else "epoch"
        self.query_one("#compare-train", SeriesPlot).show(train, unit)
        self.query_one("#compare-val", SeriesPlot).show(val, unit)
        self.query_one("#compare-auc", SeriesPlot).show(auc, unit)

    def _show_table(self) -> None:
        if self.comparison is None:
            return
        table = compare_table(self.comparison, self.baseline, self.sort, self.descending)
        widget = self.query_one("#compare-table", DataTable)
        cursor = widget.cursor_coordinate
        widget.clear(columns=True)
        for column in table.columns:
            arrow = (" ▼" if self.descending else " ▲") if column == self.sort else ""
            widget.add_column(Text(printable(column, 40) + arrow), key=column)
        for name, row in zip(table.names, table.rows):
            style = style_of(self.colours[name])
            cells = [Text(row[0].text, style=style), *(Text(cell.text) for cell in row[1:])]
            widget.add_row(*cells, key=name)
        self.row_names = table.names
        widget.move_cursor(row=cursor.row, column=cursor.column, animate=False)
        title = "runs · settings that differ · best of each metric @epoch"
        widget.border_title = title + (f" · baseline {printable(self.baseline, 40)}" if self.baseline else "")

    def _show_rocs(self, rocs: RocSet) -> None:
        self.rocs = rocs
        series = tuple(Series(name, *(tuple(a.tolist()) for a in roc.sampled()), self.colours[name])
                       for name, roc in rocs.curves)
        self.query_one("#compare-roc", RocPlot).show(series, empty="no per-image predictions")
        notes = Text()
        for note in self.comparison.notes if self.comparison else ():
            notes.append("note: " + printable(note, 400) + "\n", style="yellow")
        for name, why in rocs.left_out:
            notes.append(f"ROC of {printable(name, 60)} not drawn: {printable(why, 300)}\n", style="dim")
        for name, roc in rocs.curves:
            notes.append(f"{printable(name, 60)}: TPR {roc.tpr_at(1e-3):.4f} at FPR 1e-3   ", style=style_of(self.colours[name]))
        self.query_one("#compare-notes", Static).update(notes)

    # ------------------------------------------------------------ keys

    def action_toggle_x(self) -> None:
        self.by_images = not self.by_images
        self._show_curves()

    def _cursor_run(self) -> str | None:
        row = self.query_one("#compare-table", DataTable).cursor_row
        return self.row_names[row] if self.row_names and 0 <= row < len(self.row_names) else None

    def action_baseline(self) -> None:
        name = self._cursor_run()
        if name is None or self.comparison is None:
            return
        self.baseline = None if self.baseline == name else name
        self._show_table()
        self._read_rocs(self.comparison, self.baseline)

    def action_sort(self) -> None:
        widget = self.query_one("#compare-table", DataTable)
        if self.comparison is None or not widget.columns:
            return
        column = list(widget.columns)[widget.cursor_column].value
        self.sort_by(column)

    def sort_by(self, column: str) -> None:
        if column == self.sort:
            self.descending = not self.descending
        else:
            self.sort = column
            self.descending = column.startswith("best ") and not better_is_lower(column)
        self._show_table()

    @on(DataTable.HeaderSelected)
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        if event.column_key.value:
            self.sort_by(event.column_key.value)
