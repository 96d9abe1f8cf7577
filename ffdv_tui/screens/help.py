"""Every key of the screen you are on (``?``), read from its active bindings, and of the dialogs.

Keys are written once, in the ``BINDINGS`` of the screens and widgets; this screen, the
command palette and a test of the README's table are all generated from them, so none of
them can fall behind a new key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from itertools import groupby

from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.geometry import Size
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from ffdv_tui.screens.dialog import DialogScreen

GAP = 2  # cells between the keys and what they do
PALETTE_SKIPS = {"command_palette", "app.command_palette", "keys", "app.keys", "help_quit", "app.focus_next",
                 "app.focus_previous", "screen.copy_text", "quit", "app.quit"}  # one Quit: q, which asks first


@dataclass(frozen=True)
class KeyRow:
    group: str  # who the keys belong to: this screen, the focused widget, everywhere
    keys: str  # as the footer shows them, several keys of one action joined
    description: str
    help: str
    run: Callable[[], object] | None = None  # what the palette runs; None for keys that only act on a focused widget


# What a person does with the focused widget's keys, by the widget's class (else "In the focused <class>").
WIDGET_GROUPS = {"RunList": "Moving in the run list", "FrameTable": "Moving in the table",
                 "DataTable": "Moving in the table", "MetricsTable": "Moving in the table",
                 "Input": "Editing a text field", "Select": "Choosing from a list", "LogTail": "Reading the log"}
# Keys that only scroll sideways, copy a selection or move the focus: noise in a list of what to do.
NOISE = {"scroll_left", "scroll_right", "page_left", "page_right", "scroll_home", "scroll_end", "screen.copy_text",
         "copy_text", "app.focus_next", "app.focus_previous", "focus_next", "focus_previous"}


def group_title(node: DOMNode, screen: Screen) -> str:
    if isinstance(node, App):
        return "Everywhere"
    if node is screen:
        return "On this screen"
    title = getattr(node, "BINDING_GROUP_TITLE", None)
    if title:
        return title
    for cls in type(node).__mro__:
        if cls.__name__ in WIDGET_GROUPS:
            return WIDGET_GROUPS[cls.__name__]
    return f"In the focused {type(node).__name__}"


def key_rows(screen: Screen) -> list[KeyRow]:
    """The keys that work on ``screen`` now: the screen's, then the app's, then the focused widget's (moving)."""
    app = screen.app
    rows = []
    bindings = list(screen.active_bindings.values())
    order = {screen: 0, app: 1}
    bindings.sort(key=lambda active: order.get(active.node, 2))  # stable: each node's keys keep their order
    for node, group in groupby(bindings, key=lambda active: active.node):
        by_action: dict[str, list[Binding]] = {}
        for active in group:
            if active.binding.action in NOISE:
                continue
            if active.binding.description or active.binding.tooltip:
                by_action.setdefault(active.binding.action, []).append(active.binding)
        for action, same in by_action.items():
            keys = " / ".join(dict.fromkeys(app.get_key_display(b) for b in same))
            first = same[0]
            palette = (node is screen or isinstance(node, App)) and action not in PALETTE_SKIPS

            def run(action: str = action, node: DOMNode = node) -> object:
                return app.run_action(action, node)

            rows.append(KeyRow(group_title(node, screen), keys, first.description or action, first.tooltip or "",
                               run if palette else None))
    hidden = _hidden_now(screen, {active.binding.action for active in bindings})
    after = max((i + 1 for i, row in enumerate(rows) if row.group == "On this screen"), default=0)
    return rows[:after] + hidden + rows[after:]  # with the screen's other keys, under one heading


def _hidden_now(screen: Screen, active: set[str]) -> list[KeyRow]:
    """The screen's keys that its check_action hides at the moment (x cancels a scan only while one runs):
    listed all the same, so the keys screen says every key there is."""
    rows = []
    for binding in type(screen).BINDINGS:
        if isinstance(binding, Binding) and binding.action not in active and binding.description:
            keys = " / ".join(screen.app.get_key_display(Binding(k.strip(), binding.action)) for k in binding.key.split(","))
            rows.append(KeyRow("On this screen", keys, binding.description, "only while it applies"))
    return rows


@cache
def dialog_rows() -> tuple[KeyRow, ...]:
    """The keys of the dialogs (they take the keyboard while open: ``?`` types a question mark there).

    Made once (the app makes it while idle after the first frame: it imports the dialogs' modules).
    """
    from ffdv_tui.screens.confirm import ConfirmScreen
    from ffdv_tui.screens.filter import FilterScreen
    from ffdv_tui.screens.job import JobScreen
    from ffdv_tui.screens.matrix_form import MatrixFormScreen
    from ffdv_tui.screens.matrix_list import MatrixListScreen
    from ffdv_tui.screens.new_run import NewRunScreen

    rows = []
    for title, dialog in (("New-run form", NewRunScreen), ("Evaluate / submission", JobScreen),
                          ("Evaluation matrix form", MatrixFormScreen), ("Past matrices", MatrixListScreen),
                          ("Questions (stop, quit)", ConfirmScreen), ("Runs filter (/)", FilterScreen)):
        for binding in dialog.BINDINGS:
            if isinstance(binding, Binding):
                keys = " / ".join(k.strip() for k in binding.key.split(","))
                rows.append(KeyRow(title, keys, binding.description, binding.tooltip or ""))
    return tuple(rows)


def keys_lines(rows: list[KeyRow], width: int, console: Console) -> list[Text]:
    """Two columns (keys; what they do, wrapped under itself), grouped, as lines of at most ``width`` cells.

    Wrapped here rather than by a rich Table: a Table measured and rendered each of its
    cells, twice, and made the first ``?`` of a session take 90-130 ms (10-15 ms after).
    """
    key_width = min(max((cell_len(row.keys) for row in rows), default=1), max(width // 3, 1))
    text_width = max(width - key_width - GAP, 8)
    lines: list[Text] = []
    for group, members in groupby(rows, key=lambda row: row.group):
        lines.append(Text(group, style="bold"))
        for row in members:
            body = Text(row.description)
            if row.help:
                body.append(f": {row.help}", style="dim")
            for i, piece in enumerate(body.wrap(console, text_width)):
                line = Text(set_cell_size(row.keys, key_width) if i == 0 else " " * key_width, style="bold cyan")
                line.append(" " * GAP)
                line.append_text(piece)
                lines.append(line)
        lines.append(Text(""))
    return lines


class KeysList(Widget):
    """Every key, laid out for the width it is given (its height follows from the wrapping)."""

    DEFAULT_CSS = """
    KeysList {
        height: auto;
    }
    """

    def __init__(self, rows: list[KeyRow], **kwargs) -> None:
        super().__init__(**kwargs)
        self.rows = rows
        self._lines: tuple[int, list[Text]] | None = None

    def lines(self, width: int) -> list[Text]:
        if self._lines is None or self._lines[0] != width:
            self._lines = (width, keys_lines(self.rows, width, self.app.console))
        return self._lines[1]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.lines(width))

    def render(self) -> Text:
        return Text("\n", no_wrap=True, overflow="crop").join(self.lines(self.size.width))


class HelpScreen(DialogScreen[None]):
    DEFAULT_CSS = """
    /* Opaque: a translucent backdrop makes every frame of the keys screen compose and blend the whole workbench
       beneath it, which costs more than the keys screen itself. */
    HelpScreen {
        background: $background;
    }
    HelpScreen > #dialog {
        width: 96;
        max-width: 98%;
        max-height: 90%;
    }
    """
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, rows: list[KeyRow]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Static(Text.assemble(("escape", "bold"), ", ", ("?", "bold"), " or ", ("q", "bold"),
                                       " closes this list; ", ("ctrl+p", "bold"), " searches every command"),
                         id="keys-close")
            yield KeysList([*self.rows, *dialog_rows()], id="keys")

    def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
