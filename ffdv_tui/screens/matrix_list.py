"""Past evaluation matrices of the chosen checkpoints' runs, newest first; Enter reopens one from its files.

A damaged matrix is listed in red with its problem (opening it shows the whole message), a partial one
with its count of warnings.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from engine.contract.text import printable
from ffdv_tui.screens.dialog import DialogScreen

if TYPE_CHECKING:  # matrixstore brings pandas: the keys screen lists this dialog's keys and must not wait for it
    from engine.contract.matrixstore import MatrixSummary


class MatrixListScreen(DialogScreen[Path | None]):
    DEFAULT_CSS = """
    MatrixListScreen > #dialog {
        width: 96;
        max-height: 100%;
    }
    MatrixListScreen #matrix-list {
        height: auto;
        max-height: 20;
    }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, matrices: list[MatrixSummary]) -> None:
        super().__init__()
        self.matrices = matrices

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"{len(self.matrices)} evaluation matrices (Enter opens one)")
            options = []
            for i, summary in enumerate(self.matrices):
                when = time.strftime("%m-%d %H:%M", time.localtime(summary.time)) if summary.time else "?"
                title = Text(printable(summary.title, 120), style="red" if summary.problem else "")
                if summary.warnings:
                    title.append(f"  ({len(summary.warnings)} warning{'s' if len(summary.warnings) > 1 else ''})",
                                 style="yellow")
                options.append(Option(Text.assemble((f"{when}  ", "dim"), title), id=str(i)))
            yield OptionList(*options, id="matrix-list")

    @on(OptionList.OptionSelected, "#matrix-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.matrices[int(event.option.id or 0)].folder)

    def action_cancel(self) -> None:
        self.dismiss(None)
