"""Every key of the app, in one place (``?``)."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("Runs", [
        ("↑ ↓ / j k", "move through the runs (the highlighted run is shown)"),
        ("n", "new run: a form with defaults that work on the sample data"),
        ("p", "pause or resume the selected run"),
        ("s", "stop the selected run (it saves a checkpoint first)"),
        ("c", "save a checkpoint of the selected run now"),
        ("r", "resume a stopped or crashed run from its newest checkpoint"),
    ]),
    ("Everywhere", [
        ("tab / shift+tab", "move between panes and fields"),
        ("ctrl+p", "command palette: every action, and every run by name"),
        ("?", "this list"),
        ("q", "quit (running engines keep running)"),
        ("escape", "close a dialog or form"),
    ]),
    ("New-run form", [
        ("tab", "next field; each is checked as you type"),
        ("ctrl+s / Start", "start the run (only when every field is valid)"),
    ]),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for section, keys in KEYS:
            table.add_row(f"[bold]{section}[/]", "")
            for key, text in keys:
                table.add_row(key, text)
            table.add_row("", "")
        with VerticalScroll(id="dialog"):
            yield Static(table)
            yield Static("[dim]escape or ? closes this[/]")

    def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
