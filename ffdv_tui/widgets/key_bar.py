"""The screen's keys on one line, drawn by one widget, in the first frame.

Textual's Footer mounts a widget per key, and only after the screen first announces its
bindings: the first frame had no keys, a second frame styled a dozen new widgets, and
every focus change or closed dialog rebuilt them. This bar reads the screen's active
bindings when it draws and redraws only when what it shows changed. It looks and behaves
like the Footer: a key and its description per binding, the palette key at the right,
a click runs the key (a disabled one rings the bell), the key under the pointer is
highlighted and its tooltip shown.
"""

from __future__ import annotations

from typing import NamedTuple

from rich.style import Style
from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget

PALETTE_BORDER = "▏"


class ShownKey(NamedTuple):
    key: str  # as Textual names it (what a click simulates)
    display: str  # as the bar shows it
    description: str
    enabled: bool
    tooltip: str
    palette: bool = False


def shown_keys(screen: Screen) -> tuple[ShownKey, ...]:
    """What the bar draws on ``screen``: one entry per shown action, then the palette key (if the app has one)."""
    app = screen.app
    keys: list[ShownKey] = []
    actions: set[str] = set()
    palette = None
    for _, binding, enabled, tooltip in screen.active_bindings.values():
        if binding.action == "command_palette" and app.ENABLE_COMMAND_PALETTE:
            palette = ShownKey(binding.key, app.get_key_display(binding), binding.description, enabled,
                               binding.tooltip or binding.description, palette=True)
        elif binding.show and binding.action not in actions:  # several keys for one action: the first is shown
            actions.add(binding.action)
            keys.append(ShownKey(binding.key, app.get_key_display(binding), binding.description, enabled,
                                 tooltip or binding.description))
    return (*keys, palette) if palette else tuple(keys)


class KeyBar(Widget, can_focus=False):
    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"key-bar--key", "key-bar--description", "key-bar--hover", "key-bar--border"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        .key-bar--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .key-bar--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        .key-bar--hover {
            background: $block-hover-background;
        }
        .key-bar--border {
            color: $foreground 20%;
        }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._keys: tuple[ShownKey, ...] | None = None
        self._spans: list[tuple[int, int, ShownKey]] = []  # (first cell, cell after, key) as last drawn
        self._hover: ShownKey | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        if screen is self.screen and self.is_attached:
            keys = shown_keys(screen)
            if keys != self._keys:
                self._keys = keys
                self.refresh()

    @property
    def keys(self) -> tuple[ShownKey, ...]:
        """The keys as last drawn."""
        return self._keys or ()

    def render(self) -> Text:
        if self._keys is None:  # the first frame: the screen has not announced its bindings yet
            self._keys = shown_keys(self.screen)
        key_style = self.get_component_rich_style("key-bar--key", partial=True)
        description_style = self.get_component_rich_style("key-bar--description", partial=True)
        hover = self.get_component_rich_style("key-bar--hover", partial=True)
        dim = Style(dim=True)
        line = Text(no_wrap=True, overflow="crop", end="")
        self._spans = []
        keys = [key for key in self._keys if not key.palette]
        palette = next((key for key in self._keys if key.palette), None)
        width = self.size.width
        palette_text = Text(no_wrap=True, end="")
        if palette is not None:
            palette_text.append(PALETTE_BORDER, self.get_component_rich_style("key-bar--border"))
            palette_text.append(palette.display, key_style)
            palette_text.append(f" {palette.description} ", description_style)
        room = width - palette_text.cell_len
        for key in keys:
            start = line.cell_len
            if start >= room:
                break
            extra = (hover if key == self._hover else Style()) + (Style() if key.enabled else dim)
            line.append(f" {key.display} ", key_style + extra)
            if key.description:
                line.append(f"{key.description} ", description_style + extra)
            self._spans.append((start, min(line.cell_len, room), key))
        line.truncate(max(0, room))
        if palette is not None and width >= palette_text.cell_len:
            line.pad_right(room - line.cell_len)
            start = line.cell_len
            if palette == self._hover:
                palette_text.stylize(hover, 1)
            line.append_text(palette_text)
            self._spans.append((start + 1, line.cell_len, palette))
        return line

    def key_at(self, x: int) -> ShownKey | None:
        return next((key for start, end, key in self._spans if start <= x < end), None)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        key = self.key_at(event.x)
        if key != self._hover:
            self._hover = key
            self.tooltip = key.tooltip if key is not None else None
            self.refresh()

    def on_leave(self, event: events.Leave) -> None:
        if self._hover is not None:
            self._hover = None
            self.tooltip = None
            self.refresh()

    def on_mouse_down(self, event: events.MouseDown) -> None:
        key = self.key_at(event.x)
        if key is None:
            return
        if key.enabled:
            self.app.simulate_key(key.key)
        else:
            self.app.bell()
