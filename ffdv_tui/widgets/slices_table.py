"""The predictions grouped by a slice (source, format, JPEG quality, size, an extra label column).

Each slice's images, fake share, AUC and accuracy at the screen's threshold; the worst slice is
flagged. Selecting a slice (enter) asks the screen to show only its images; the "all" row shows
every image again. Image facts (format, quality, size) are read from the files' headers in a
worker, once per predictions file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Select, Static

from engine.contract.fmt import fmt_metric
from engine.contract.text import printable
from engine.data.slices import image_facts, slice_columns, slice_metrics

ALL = "all images"


SLICE_COLUMNS = (("slice", 10), ("images", 6), ("fake", 4), ("AUC", 6), ("acc.", 6), ("", 5))  # fits 80 columns


class SlicesTable(Vertical):
    """Metrics per slice of one predictions frame; posts ``Selected`` with the chosen slice's image names."""

    DEFAULT_CSS = """
    SlicesTable { height: 10; }
    SlicesTable #slice-head { height: 1; }
    SlicesTable #slice-by { width: 30; }
    SlicesTable #slice-note { width: 1fr; padding: 0 1; }
    SlicesTable DataTable { height: 1fr; }
    """

    class Selected(Message):
        """A slice was chosen: show only these images (``names`` None: all of them)."""

        def __init__(self, column: str, value: str | None, names: frozenset[str] | None) -> None:
            super().__init__()
            self.column = column
            self.value = value
            self.names = names

    class Computed(Message):
        """The slices of ``source`` (the predictions as given; ``frame``: with the image facts, once read)."""

        def __init__(self, source: pd.DataFrame, frame: pd.DataFrame, column: str, table: pd.DataFrame) -> None:
            super().__init__()
            self.source = source
            self.frame = frame
            self.column = column
            self.table = table

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._source: pd.DataFrame | None = None  # the predictions as given
        self._frame: pd.DataFrame | None = None  # with the image facts
        self._shown: pd.DataFrame | None = None  # the frame the rows were computed from
        self._threshold = 0.5
        self._images: Path | None = None
        self._rows_column: str | None = None  # what the rows shown now are sliced by
        self.table: pd.DataFrame | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="slice-head"):
            yield Select([("source", "source")], id="slice-by", value="source", allow_blank=False, compact=True)
            yield Static(id="slice-note")
        table = DataTable(id="slices-rows", cursor_type="row", zebra_stripes=True)
        for label, width in SLICE_COLUMNS:  # fixed widths: the table does not jump as the image facts arrive
            table.add_column(label, width=width)
        yield table

    @property
    def facts_read(self) -> bool:
        """Whether the shown slices include the image facts (format, quality, size), read in a worker."""
        return self._frame is not None and self._shown is self._frame

    @property
    def column(self) -> str:
        value = self.query_one("#slice-by", Select).value
        return str(value) if value is not Select.BLANK else "source"

    def show(self, frame: pd.DataFrame, threshold: float, images: Path | None) -> None:
        """Slice these predictions (the image facts are read once per frame) at this threshold."""
        self._threshold = threshold
        if frame is not self._source:
            self._source, self._frame, self._images = frame, None, images
        self._compute(self._source, self._frame, self.column, threshold, images)

    def next_column(self) -> None:
        """Slice by the next column (source, format, JPEG quality, size, the label file's others)."""
        frame = self._shown if self._shown is not None else self._source
        options = slice_columns(frame) if frame is not None else []
        if options:
            current = self.column
            at = options.index(current) + 1 if current in options else 0
            self.query_one("#slice-by", Select).value = options[at % len(options)]

    @work(thread=True, exclusive=True, group="slices")
    def _compute(self, source: pd.DataFrame, frame: pd.DataFrame | None, column: str, threshold: float,
                 images: Path | None) -> None:
        if frame is None:
            if column in source.columns:  # what the predictions hold is shown before the facts are read
                self.post_message(self.Computed(source, source, column, slice_metrics(source, column, threshold)))
            facts = image_facts(images, source["img_name"])
            frame = pd.concat([source.reset_index(drop=True), facts], axis=1)
        if column not in frame.columns:
            column = slice_columns(frame)[0]
        self.post_message(self.Computed(source, frame, column, slice_metrics(frame, column, threshold)))

    @on(Computed)
    def _computed(self, message: Computed) -> None:
        if message.source is not self._source:
            return  # a newer frame is on its way
        rows = self.query_one("#slices-rows", DataTable)
        kept = self._highlighted_slice(rows) if message.column == self._rows_column else None
        self._rows_column = message.column
        self._shown, self.table = message.frame, message.table
        if message.frame is not message.source:
            self._frame = message.frame  # the facts are read: not again for this frame
        select = self.query_one("#slice-by", Select)
        options = slice_columns(message.frame)
        with self.prevent(Select.Changed):
            select.set_options([(printable(c, 24), c) for c in options])
            select.value = message.column
        rows.clear()
        rows.add_row(Text(ALL, style="bold"), f"{len(message.frame):,}", "", "", "", "", key="\0all")
        for i, row in message.table.iterrows():
            flag = Text("worst", style="bold red") if row["worst"] else Text("")
            rows.add_row(Text(printable(row["slice"], 40)), f"{row['images']:,}", f"{row['fake share']:.0%}",
                         fmt_metric(row["auc"]), fmt_metric(row["accuracy"]), flag, key=str(i))
        if kept is not None:  # the facts arrived (or the threshold moved) under the cursor: it stays on its slice
            labels = [ALL, *message.table["slice"].astype(str)]
            rows.move_cursor(row=labels.index(kept) if kept in labels else 0, animate=False)
        worst = message.table[message.table["worst"]]
        count = len(message.table)
        note = f"by {message.column}: {count} slice{'' if count == 1 else 's'}" + (
            f" · worst {printable(worst['slice'].iloc[0], 30)}" if len(worst) else "")
        self.query_one("#slice-note", Static).update(Text(note))

    def _highlighted_slice(self, rows: DataTable) -> str | None:
        """The slice under the cursor, by value (row keys are positions in a table about to be replaced)."""
        if not rows.row_count or self.table is None:
            return None
        key = rows.coordinate_to_cell_key(rows.cursor_coordinate).row_key.value
        if key == "\0all":
            return ALL
        return str(self.table.loc[int(key), "slice"]) if key is not None and int(key) in self.table.index else None

    @on(Select.Changed, "#slice-by")
    def _column_changed(self) -> None:
        if self._source is not None:
            self._compute(self._source, self._frame, self.column, self._threshold, self._images)

    @on(DataTable.RowSelected, "#slices-rows")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        if key == "\0all" or self._shown is None or self.table is None:
            self.post_message(self.Selected(self.column, None, None))
            return
        value = str(self.table.loc[int(key), "slice"])
        column = self.column
        shown = self._shown
        names = frozenset(shown.loc[shown[column].astype(str) == value, "img_name"].astype(str))
        self.post_message(self.Selected(column, value, names))
