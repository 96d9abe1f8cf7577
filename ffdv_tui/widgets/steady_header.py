"""Textual's header, whose title changes without a layout pass of the whole screen, and in the same frame.

Textual's HeaderTitle is a Static, and Static.update() lays out the screen in case the
new text changes the widget's size. The title is as wide as the header whatever it
says, and it changes with every run shown, so each arrow key in the run list paid a
reflow of every widget on the workbench for nothing.

The Header updates its title from a watcher of the app's sub-title, which runs a message
later than the code that set it: the run shown was drawn, then its name in the header a
frame later. ``show_title`` updates it at once; the watcher's update then changes nothing.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.visual import VisualType
from textual.widgets import Header
from textual.widgets._header import HeaderClock, HeaderClockSpace, HeaderIcon, HeaderTitle


class SteadyHeaderTitle(HeaderTitle):
    def update(self, content: VisualType = "", *, layout: bool = False) -> None:
        if content != self.content:
            super().update(content, layout=layout)


class SteadyHeader(Header):
    def compose(self) -> ComposeResult:
        yield HeaderIcon().data_bind(Header.icon)
        yield SteadyHeaderTitle()
        yield HeaderClock().data_bind(Header.time_format) if self._show_clock else HeaderClockSpace()

    def show_title(self) -> None:
        """The title and sub-title as they are now, in the frame being made."""
        self.query_one(SteadyHeaderTitle).update(self.format_title())
