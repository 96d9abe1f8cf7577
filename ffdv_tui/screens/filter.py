"""The runs list's filter (``/``): the list follows each key typed; Enter keeps the filter, Escape puts back the old one."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static

from engine.contract.text import printable
from ffdv_tui.screens.dialog import DialogScreen

HINT = "name, status or model words; auc>0.8  loss<0.5  model=resnet*  lr<=0.001  status!=crashed  (all must hold)"


class FilterScreen(DialogScreen[str | None]):
    DEFAULT_CSS = """
    FilterScreen {
        align: center bottom;
    }
    FilterScreen > #dialog {
        width: 80;
        max-width: 100%;
        padding: 0 1;
    }
    FilterScreen #filter-why {
        color: $text-muted;
    }
    FilterScreen #filter-why.error {
        color: $error;
    }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Close the filter and put back the one before"),
        Binding("enter", "keep", "Keep", tooltip="Close the filter and keep it (an empty one shows every run)"),
    ]

    def __init__(self, text: str, apply: Callable[[str], str | None]) -> None:
        super().__init__()
        self.text = text
        self.apply = apply  # filters the list; returns why the text cannot be read

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Input(self.text, placeholder="filter the runs", id="filter-input")
            yield Static(Text(HINT), id="filter-why")

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        why = self.apply(event.value)
        hint = self.query_one("#filter-why", Static)
        hint.update(Text(printable(why, 300) if why else HINT))
        hint.set_class(bool(why), "error")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.action_keep()

    def action_keep(self) -> None:
        value = self.query_one(Input).value
        if self.apply(value) is None:
            self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
