"""How a screen's text fields let go: Enter or Down goes to the screen's table, Escape first leaves the field.

A person who typed a search wants to look at what it found: Enter (which a field
otherwise ignores) and Down take them to the table. Escape in a field only leaves the
field; the next Escape leaves the screen, so a half-typed filter never costs the screen
and its settings.
"""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input


class InputExits:
    """Mixed into a Screen: bind ``escape`` to ``back``; ``TABLE`` names the table the fields belong to."""

    TABLE = ""
    EXIT_BINDINGS = [
        Binding("escape", "back", "Back", tooltip="Leave the text field (so do Enter and ↓); from the table, close "
                "this screen"),
    ]

    def _to_table(self: Screen) -> None:
        self.query_one(self.TABLE).focus()

    def action_back(self: Screen) -> None:
        if isinstance(self.focused, Input):
            self._to_table()
        else:
            self.app.pop_screen()

    def on_key(self: Screen, event: events.Key) -> None:
        """↓ in a field (which has no use for it) goes to the table; not a binding, which the table's own ↓ hides."""
        if event.key == "down" and isinstance(self.focused, Input):
            event.stop()
            self._to_table()

    def on_input_submitted(self: Screen, event: Input.Submitted) -> None:
        self._to_table()
