"""Every key of the screen you are on (``?``), read from its active bindings, and of the dialogs.

Keys are written once, in the ``BINDINGS`` of the screens and widgets; this screen, the
command palette and a test of the README's table are all generated from them, so none of
them can fall behind a new key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import Static

from ffdv_tui.screens.dialog import DialogScreen

PALETTE_SKIPS = {"command_palette", "app.command_palette", "keys", "app.keys", "help_quit", "app.focus_next",
                 "app.focus_previous", "screen.copy_text"}


@dataclass(frozen=True)
class KeyRow:
    group: str  # who the keys belong to: this screen, the focused widget, everywhere
    keys: str  # as the footer shows them, several keys of one action joined
    description: str
    help: str
    run: Callable[[], object] | None = None  # what the palette runs; None for keys that only act on a focused widget


def group_title(node: DOMNode, screen: Screen) -> str:
    if isinstance(node, App):
        return "Everywhere"
    if node is screen:
        return "This screen"
    return getattr(node, "BINDING_GROUP_TITLE", None) or type(node).__name__


def key_rows(screen: Screen) -> list[KeyRow]:
    """The keys that work on ``screen`` now (focused widget first, then the screen, then the app)."""
    app = screen.app
    rows = []
    bindings = list(screen.active_bindings.values())
    for node, group in groupby(bindings, key=lambda active: active.node):
        by_action: dict[str, list[Binding]] = {}
        for active in group:
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
    return rows


def dialog_rows() -> list[KeyRow]:
    """The keys of the dialogs (they take the keyboard while open: ``?`` types a question mark there)."""
    from ffdv_tui.screens.confirm import ConfirmScreen
    from ffdv_tui.screens.job import JobScreen
    from ffdv_tui.screens.matrix_form import MatrixFormScreen
    from ffdv_tui.screens.matrix_list import MatrixListScreen
    from ffdv_tui.screens.new_run import NewRunScreen

    rows = []
    for title, dialog in (("New-run form", NewRunScreen), ("Evaluate / submission", JobScreen),
                          ("Evaluation matrix form", MatrixFormScreen), ("Past matrices", MatrixListScreen),
                          ("Questions (stop, quit)", ConfirmScreen)):
        for binding in dialog.BINDINGS:
            if isinstance(binding, Binding):
                keys = " / ".join(k.strip() for k in binding.key.split(","))
                rows.append(KeyRow(title, keys, binding.description, binding.tooltip or ""))
    return rows


def keys_table(rows: list[KeyRow]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for group, members in groupby(rows, key=lambda row: row.group):
        table.add_row(Text(group, style="bold"), "")
        for row in members:
            text = Text(row.description)
            if row.help:
                text.append(f": {row.help}", style="dim")
            table.add_row(Text(row.keys), text)
        table.add_row("", "")
    return table


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
            yield Static(keys_table(self.rows + dialog_rows()), id="keys")
            yield Static(Text("escape or ? closes this", style="dim"))

    def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
