"""Textual's footer, rebuilt only when the keys it shows change.

Textual's Footer recomposes itself (a dozen new key widgets, each styled from the whole
stylesheet) every time the screen's bindings are refreshed: on every focus change, every
return from a dialog, and after key presses. On the workbench that was the largest single
cost of closing the keys screen, and the keys shown were the same each time.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


def shown_keys(screen: Screen) -> tuple:
    """What a Footer on ``screen`` draws: each shown binding with its state, and the palette key."""
    app = screen.app
    return tuple((b.key, b.description, b.action, enabled, tooltip, b.group) for _, b, enabled, tooltip
                 in screen.active_bindings.values() if b.show or b.action == "command_palette"), app.ENABLE_COMMAND_PALETTE


class SteadyFooter(Footer):
    _composed: tuple | None = None

    def compose(self):
        if self._bindings_ready:
            self._composed = shown_keys(self.screen)
        yield from super().compose()

    def bindings_changed(self, screen: Screen) -> None:
        if self._bindings_ready and self.is_attached and screen is self.screen and shown_keys(screen) == self._composed:
            return
        super().bindings_changed(screen)
