"""The screen's keys on one line, drawn by one widget, in the first frame.

Textual's Footer mounts a widget per key, and only after the screen first announces its
bindings: the first frame had no keys, a second frame styled a dozen new widgets, and
every focus change or closed dialog rebuilt them. This bar reads the screen's active
bindings when it draws and redraws only when what it shows changed. It looks and behaves
like the Footer: a key and its description per binding, the palette key at the right,
a click runs the key (a disabled one rings the bell), the key under the pointer is
highlighted and its tooltip shown.

When the keys do not fit on one line, the bar shortens the labels to their first word,
then wraps onto a second line, then leaves out the lowest-ranked keys: a screen's keys
rank in the order its BINDINGS list them, and the app's ``?`` (every key) and ``q``
(quit) and the palette rank first, so the ways to find everything else are always
there. A label is shortened or left out whole, never cut in the middle of a word.
"""

from __future__ import annotations

from typing import NamedTuple

from rich.style import Style
from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget

PALETTE_BORDER = "▏"
MAX_LINES = 2
ALWAYS_SHOWN = {"keys", "app.keys", "quit_app", "app.quit_app"}  # the ways to discover (and leave) everything else


class ShownKey(NamedTuple):
    key: str  # as Textual names it (what a click simulates)
    display: str  # as the bar shows it
    description: str
    enabled: bool
    tooltip: str
    palette: bool = False
    action: str = ""

    @property
    def short(self) -> str:
        """The label when room is short: its first word ("Resume run" → "Resume")."""
        return self.description.split(" ")[0]

    @property
    def always(self) -> bool:
        return self.palette or self.action in ALWAYS_SHOWN


class Placed(NamedTuple):
    key: ShownKey
    label: str
    line: int
    start: int  # first cell on its line
    compact: bool = False  # no space before the key

    @property
    def cells(self) -> int:
        return _cells(self.key, self.label, self.compact)


def _cells(key: ShownKey, label: str, compact: bool = False) -> int:
    return len(key.display) + (1 if compact else 2) + (len(label) + 1 if label else 0)


LEVELS = ((False, False), (True, False), (True, True))  # (short labels, compact): tried in this order


def _flow(keys: list[ShownKey], palette: ShownKey | None, width: int, short: bool,
          max_lines: int, compact: bool = False) -> list[Placed] | None:
    """The keys laid left to right over at most ``max_lines`` lines, the palette at the right of the last; None if they do not fit."""
    placed: list[Placed] = []
    line = x = 0
    for key in keys:
        label = key.short if short else key.description
        size = _cells(key, label, compact)
        if x and x + size > width:
            line, x = line + 1, 0
        if line >= max_lines or size > width:
            return None
        placed.append(Placed(key, label, line, x, compact))
        x += size
    if palette is not None:
        size = len(PALETTE_BORDER) + _cells(palette, palette.description) - 1
        if x + size > width:
            line, x = line + 1, 0
        if line >= max_lines or size > width:
            return None
        placed.append(Placed(palette, palette.description, line, width - size))
    return placed


def plan(keys: tuple[ShownKey, ...], width: int, max_lines: int = MAX_LINES) -> list[Placed]:
    """Where each key goes at ``width``: full labels on one line, short labels, two lines, then fewer keys."""
    shown = [key for key in keys if not key.palette]
    palette = next((key for key in keys if key.palette), None)
    for lines in range(1, max_lines + 1):
        for short, compact in LEVELS:
            placed = _flow(shown, palette, width, short, lines, compact)
            if placed is not None:
                return placed
    while shown:  # the lowest-ranked key goes first: the last of the screen's own
        droppable = [key for key in shown if not key.always]
        if not droppable:
            break
        shown.remove(droppable[-1])
        placed = _flow(shown, palette, width, True, max_lines, True)
        if placed is not None:
            return placed
    return _flow([key for key in shown if key.always], None, width, True, max_lines, True) or []


def shown_keys(screen: Screen) -> tuple[ShownKey, ...]:
    """What the bar draws on ``screen``: one entry per shown action, then the palette key (if the app has one)."""
    app = screen.app
    keys: list[ShownKey] = []
    actions: set[str] = set()
    palette = None
    for _, binding, enabled, tooltip in screen.active_bindings.values():
        if binding.action == "command_palette" and app.ENABLE_COMMAND_PALETTE:
            palette = ShownKey(binding.key, app.get_key_display(binding), binding.description, enabled,
                               binding.tooltip or binding.description, palette=True, action=binding.action)
        elif binding.show and binding.action not in actions:  # several keys for one action: the first is shown
            actions.add(binding.action)
            keys.append(ShownKey(binding.key, app.get_key_display(binding), binding.description, enabled,
                                 tooltip or binding.description, action=binding.action))
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
        self._placed: list[Placed] = []  # as last drawn
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
                self._fit_height()
                self.refresh()

    def on_resize(self) -> None:
        self._fit_height()

    def _fit_height(self) -> None:
        """One line, or two when the keys need them (the screen above gives up a line)."""
        if self._keys is None:
            self._keys = shown_keys(self.screen)
        width = self.size.width or self.app.size.width
        lines = 1 + max((placed.line for placed in plan(self._keys, width)), default=0)
        if self.styles.height is None or self.styles.height.cells != lines:
            self.styles.height = lines

    @property
    def keys(self) -> tuple[ShownKey, ...]:
        """The keys the screen offers (some may be left out of a narrow bar: see ``shown``)."""
        return self._keys or ()

    @property
    def shown(self) -> tuple[ShownKey, ...]:
        """The keys as last drawn."""
        return tuple(placed.key for placed in self._placed)

    def render(self) -> Text:
        if self._keys is None:  # the first frame: the screen has not announced its bindings yet
            self._keys = shown_keys(self.screen)
        key_style = self.get_component_rich_style("key-bar--key", partial=True)
        description_style = self.get_component_rich_style("key-bar--description", partial=True)
        hover = self.get_component_rich_style("key-bar--hover", partial=True)
        border = self.get_component_rich_style("key-bar--border")
        dim = Style(dim=True)
        width = self.size.width
        self._placed = plan(self._keys, width, max(self.size.height, 1))
        lines = [Text(no_wrap=True, overflow="crop", end="") for _ in range(max(self.size.height, 1))]
        for placed in self._placed:
            key = placed.key
            line = lines[placed.line]
            line.pad_right(placed.start - line.cell_len)
            extra = (hover if key == self._hover else Style()) + (Style() if key.enabled else dim)
            if key.palette:
                line.append(PALETTE_BORDER, border)
                line.append(key.display, key_style + extra)
                line.append(f" {placed.label} ", description_style + extra)
                continue
            line.append(f"{key.display} " if placed.compact else f" {key.display} ", key_style + extra)
            if placed.label:
                line.append(f"{placed.label} ", description_style + extra)
        return Text("\n", no_wrap=True, overflow="crop", end="").join(lines)

    def key_at(self, x: int, y: int = 0) -> ShownKey | None:
        for placed in self._placed:
            first = placed.start + (len(PALETTE_BORDER) if placed.key.palette else 0)
            end = placed.start + placed.cells + (len(PALETTE_BORDER) - 1 if placed.key.palette else 0)
            if placed.line == y and first <= x < end:
                return placed.key
        return None

    def on_mouse_move(self, event: events.MouseMove) -> None:
        key = self.key_at(event.x, event.y)
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
        key = self.key_at(event.x, event.y)
        if key is None:
            return
        if key.enabled:
            self.app.simulate_key(key.key)
        else:
            self.app.bell()
