"""A SelectionList whose boxes read ✓ when chosen and stay empty when not.

Textual's SelectionList draws every box as ``▐X▌`` and tells chosen from not by colour alone,
which a plain or 256-colour terminal over SSH can draw nearly alike: the glyph says it instead.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import SelectionList
from textual.widgets._toggle_button import ToggleButton

CHECKED = "✓"
UNCHECKED = " "


class CheckList(SelectionList[str]):
    def render_line(self, y: int) -> Strip:
        line = super().render_line(y)
        segments = list(line)
        if len(segments) < 3 or segments[0].text != ToggleButton.BUTTON_LEFT:
            return line  # a line with no box (past the last choice)
        selection = self.get_option_at_index(self.scroll_offset.y + y)
        inner = segments[1]
        glyph = CHECKED if selection.value in self._selected else UNCHECKED
        segments[1] = Segment(glyph, inner.style, inner.control)
        return Strip(segments, line.cell_length)
