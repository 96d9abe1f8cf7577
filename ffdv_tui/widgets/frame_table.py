"""A table over a pandas DataFrame (or plain columns of values) that draws only the rows on screen.

Cells are drawn as raw segments, so each goes through printable() first: an image named
``\\x1b]0;TITLE\\x07`` shows that text, it does not retitle the terminal.

Textual's DataTable holds every row as widget data: 150,000 predictions or a
1,000,000-line label file would take seconds to add and much memory. This widget
keeps the frame's columns as numpy arrays and formats the visible rows on demand
(Textual's line API), so opening, filtering and sorting cost what pandas costs. The
workbench's validations table shows plain columns through ``set_rows``: switching runs
costs the same for ten validations or a thousand, and imports neither numpy nor pandas.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from engine.contract.text import printable

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Column:
    key: str  # frame column
    label: str
    width: int
    fmt: Callable[[Any], str] = str
    justify: str = "left"  # "left" or "right"
    style: Callable[[Any], str] | None = None  # rich style of a cell from its value
    min_width: int = 0  # if set, the column gives up cells (down to this) so the columns after it stay in view


def _fit(text: str, width: int, justify: str) -> str:
    """The cell's text cut or padded to ``width``: control characters shown escaped, never sent to the terminal."""
    text = printable(text, max(width, 1) + 1)
    if len(text) > width:
        return text[: max(width - 1, 0)] + "…"
    return text.rjust(width) if justify == "right" else text.ljust(width)


class FrameTable(ScrollView, can_focus=True):
    """Rows of a DataFrame under a fixed header; the cursor row is highlighted and announced."""

    COMPONENT_CLASSES = {"frame-table--header", "frame-table--cursor", "frame-table--even-row"}
    DEFAULT_CSS = """
    FrameTable > .frame-table--header { text-style: bold; background: $panel; }
    FrameTable > .frame-table--even-row { background: $surface-lighten-1 50%; }
    FrameTable > .frame-table--cursor { background: $accent 40%; }
    FrameTable:focus > .frame-table--cursor { background: $accent; color: $text; }
    """
    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]

    cursor_row: reactive[int] = reactive(0)
    zebra_stripes = False  # every other row on a lighter background

    @dataclass
    class RowHighlighted(Message):
        """The cursor moved to ``row`` (position in the table); ``index`` is the frame's index label."""

        table: FrameTable
        row: int
        index: Any

        @property
        def control(self) -> FrameTable:
            return self.table

    def __init__(self, columns: list[Column], **kwargs) -> None:
        super().__init__(**kwargs)
        self.columns = columns
        self._data: list[Sequence] = []
        self._index: Sequence = ()
        self.row_count = 0
        self._widths: list[int] = [c.width for c in columns]

    def set_frame(self, frame: pd.DataFrame, keep_index: Any = None) -> None:
        """Show ``frame``; the cursor goes to the row whose index is ``keep_index`` (if present), else the top."""
        import numpy as np  # the caller has pandas, hence numpy, loaded already

        index = frame.index.to_numpy()
        row = 0
        if keep_index is not None and len(index):
            found = np.flatnonzero(index == keep_index)
            row = int(found[0]) if len(found) else 0
        self.set_rows([frame[c.key].to_numpy() for c in self.columns], index, row)

    def set_rows(self, data: list[Sequence], index: Sequence, row: int = 0) -> None:
        """Show ``data`` (one sequence of values per column, in the order of ``columns``); the cursor on ``row``.

        Nothing is formatted here: the rows are drawn when they come into view.
        """
        self._data = data
        self._index = index
        self.row_count = len(index)
        self._fit_widths()
        self.cursor_row = max(0, min(row, self.row_count - 1))
        self._scroll_to_cursor()
        self._announce()
        self.refresh()

    def index_at(self, row: int) -> Any:
        return self._index[row] if 0 <= row < self.row_count else None

    def row_style(self, row: int) -> str:
        """A rich style for the whole of ``row`` (none here; a subclass marks rows it cares about)."""
        return ""

    def value_at(self, row: int, key: str) -> Any:
        """The value of column ``key`` in ``row`` (as shown, before formatting)."""
        for column, data in zip(self.columns, self._data):
            if column.key == key and 0 <= row < self.row_count:
                return data[row]
        return None

    # ------------------------------------------------------------ drawing

    def _room(self) -> int:
        """The columns' width: the widget's, less the vertical scrollbar's when the rows will need one. Worked out from
        the size, not from the scrollbar shown now, which appears a frame after the rows arrive (widths fitted before it
        came were two cells too wide, and a horizontal scrollbar followed)."""
        if not self.size.width:
            return self.scrollable_content_region.width or 10**6
        needs_bar = self.size.height and self.row_count + 1 > self.size.height  # +1: the header line
        return self.size.width - (self.styles.scrollbar_size_vertical if needs_bar else 0)

    def _fit_widths(self) -> None:
        """Each column's width in the space there is: flexible columns (``min_width``) shrink first, in order."""
        widths = [c.width for c in self.columns]
        excess = sum(w + 1 for w in widths) - self._room()
        for i, column in enumerate(self.columns):
            if excess <= 0:
                break
            if column.min_width:
                cut = min(excess, max(column.width - column.min_width, 0))
                widths[i] -= cut
                excess -= cut
        self._widths = widths
        self.virtual_size = Size(sum(w + 1 for w in widths), self.row_count + 1)  # +1: the header line

    def _clip(self, strip: Strip, style: Style) -> Strip:
        """The strip in view, without a column cut at the right edge: that one is blank but for an ellipsis."""
        scroll_x, width = self.scroll_offset.x, self.size.width
        right = scroll_x + width
        start = 0
        for column_width in self._widths:
            end = start + column_width
            if start < right < end:
                # the first column in view is cut where the view ends; a later one is left out (blank)
                keep = right - 1 if start <= scroll_x else start
                strip = strip.crop(0, keep).extend_cell_length(keep, style)
                strip = Strip([*strip, Segment("…", style)])
                break
            start = end + 1
        return strip.crop(scroll_x, right).extend_cell_length(width, style)

    def render_line(self, y: int) -> Strip:
        scroll_y = self.scroll_offset.y
        width = self.size.width
        if y == 0:
            style = self.get_component_rich_style("frame-table--header")
            text = " ".join(_fit(c.label, w, c.justify) for c, w in zip(self.columns, self._widths))
            return self._clip(Strip([Segment(text, style)]), style)
        row = scroll_y + y - 1
        base = self.rich_style
        if row >= self.row_count:
            return Strip.blank(width, base)
        cursor = row == self.cursor_row
        if cursor:
            row_style = self.get_component_rich_style("frame-table--cursor")
        else:
            if self.zebra_stripes and row % 2 == 0:
                base = self.get_component_rich_style("frame-table--even-row")
            row_style = base + Style.parse(self.row_style(row))
        segments = []
        for column, data, column_width in zip(self.columns, self._data, self._widths):
            value = data[row]
            cell = _fit(column.fmt(value), column_width, column.justify)
            style = row_style
            if column.style is not None and not cursor:
                style = row_style + Style.parse(column.style(value) or "")
            segments += [Segment(cell, style), Segment(" ", row_style)]
        return self._clip(Strip(segments), row_style)

    # ------------------------------------------------------------ the cursor

    def watch_cursor_row(self, old: int, new: int) -> None:
        self.refresh_line_for_row(old)
        self.refresh_line_for_row(new)
        self._scroll_to_cursor()

    def on_resize(self) -> None:
        self._fit_widths()
        self._scroll_to_cursor()
        self.refresh()

    def _scroll_to_cursor(self) -> None:
        if not self.size.height:
            return  # not laid out yet: on_resize brings the cursor into view
        new = self.cursor_row
        top, visible = self.scroll_offset.y, max(self.size.height - 1, 1)  # the header takes a line
        if new < top:
            self.scroll_to(y=new, animate=False, force=True)
        elif new >= top + visible:
            self.scroll_to(y=new - visible + 1, animate=False, force=True)

    def refresh_line_for_row(self, row: int) -> None:
        self.refresh(Region(0, row - self.scroll_offset.y + 1, self.size.width, 1))

    def _announce(self) -> None:
        if self.row_count:
            self.post_message(self.RowHighlighted(self, self.cursor_row, self.index_at(self.cursor_row)))

    def _move_to(self, row: int) -> None:
        if not self.row_count:
            return
        row = max(0, min(self.row_count - 1, row))
        if row != self.cursor_row:
            self.cursor_row = row
            self._announce()

    def action_cursor(self, delta: int) -> None:
        self._move_to(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self._move_to(self.cursor_row + direction * max(self.size.height - 2, 1))

    def action_jump(self, where: int) -> None:
        self._move_to(self.row_count - 1 if where < 0 else 0)

    def on_click(self, event) -> None:
        row = self.scroll_offset.y + event.y - 1
        if event.y >= 1:
            self._move_to(row)
