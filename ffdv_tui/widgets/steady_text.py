"""Text in a box whose size the stylesheet fixes: new content repaints this widget and nothing else.

Static.update() also lays out the whole screen, in case the new content changes the
widget's size. The progress lines change several times a second while a run trains and
never change size, so for them that reflow of every widget is work the UI thread does
for nothing while keys wait.
"""

from __future__ import annotations

from rich.console import RenderableType
from textual.widget import Widget


class SteadyText(Widget):
    """Shows one renderable; give it a fixed height (and width) in the stylesheet."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._content: RenderableType = ""

    def render(self) -> RenderableType:
        return self._content

    def update(self, content: RenderableType = "") -> None:
        self._content = content
        self.refresh()
