"""Where a checkpoint job should look: the dataset (or split folder), the split, and where to write."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select, Static

from engine.contract.text import printable
from ffdv_tui.screens.dialog import DialogScreen
from ffdv_tui.widgets.path_suggester import PathSuggester

SPLITS = ("val", "test", "train")


@dataclass(frozen=True)
class JobRequest:
    data: Path
    split: str
    out: Path | None


class JobScreen(DialogScreen[JobRequest | None]):
    DEFAULT_CSS = """
    JobScreen > #dialog {
        width: 90;
    }
    JobScreen #job-title {
        margin-bottom: 1;
    }
    JobScreen Input {
        width: 1fr;
    }
    JobScreen Select {
        width: 20;
    }
    JobScreen #job-why {
        height: auto;
        margin-top: 1;
    }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "start", "Start", priority=True)]

    def __init__(self, title: str, data: str, split: str, out: str | None) -> None:
        super().__init__()
        self.title_text, self.data, self.split, self.out = title, data, split, out

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(printable(self.title_text)), id="job-title")
            with Horizontal(classes="field"):
                yield Label("Dataset", classes="field-label")
                yield Input(self.data, id="job-data", compact=True, suggester=PathSuggester(),
                            placeholder="dataset root or split folder (→ completes)")
            with Horizontal(classes="field"):
                yield Label("Split", classes="field-label")
                yield Select([(s, s) for s in SPLITS], value=self.split, id="job-split", allow_blank=False,
                             compact=True)
            if self.out is not None:
                with Horizontal(classes="field"):
                    yield Label("Write to", classes="field-label")
                    yield Input(self.out, id="job-out", compact=True)
            yield Static("", id="job-why")
            with Horizontal(id="form-buttons"):
                yield Button("Start", variant="success", id="start")
                yield Button("Cancel", id="cancel")

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        data = Path(self.query_one("#job-data", Input).value.strip()).expanduser()
        if not data.exists():
            self.query_one("#job-why", Static).update(Text(f"{printable(data)}: no such folder", style="red"))
            return
        out = None
        if self.out is not None:
            text = self.query_one("#job-out", Input).value.strip()
            out = Path(text).expanduser() if text else None
        self.dismiss(JobRequest(data, str(self.query_one("#job-split", Select).value), out))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
