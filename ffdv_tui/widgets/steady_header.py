"""Textual's header, whose title changes without a layout pass of the whole screen.

Textual's HeaderTitle is a Static, and Static.update() lays out the screen in case the
new text changes the widget's size. The title is as wide as the header whatever it
says, and it changes with every run shown, so each arrow key in the run list paid a
reflow of every widget on the workbench for nothing.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.visual import VisualType
from textual.widgets import Header
from textual.widgets._header import HeaderClock, HeaderClockSpace, HeaderIcon, HeaderTitle


class SteadyHeaderTitle(HeaderTitle):
    def update(self, content: VisualType = "", *, layout: bool = False) -> None:
        super().update(content, layout=layout)


class SteadyHeader(Header):
    def compose(self) -> ComposeResult:
        yield HeaderIcon().data_bind(Header.icon)
        yield SteadyHeaderTitle()
        yield HeaderClock().data_bind(Header.time_format) if self._show_clock else HeaderClockSpace()
