"""Hard examples of a run, chosen over the predictions screen: wrong since epoch k, flip-flops m of the last n.

The rule is ``engine.data.hard_examples`` (the same as ``ffdv hard``): "Show" filters the predictions
to those images, "Export" writes them as ``RUN/hard-examples.csv`` (the file ``ffdv train
--sample-weights`` takes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from engine.contract.errors import FfdvError
from engine.contract.text import plain_text
from engine.data.hard_examples import flip_flops, hard_frame, score_table, write_hard_examples, wrong_since
from ffdv_tui.screens.dialog import DialogScreen


@dataclass(frozen=True)
class HardChoice:
    names: frozenset[str]
    label: str


def choose(run_dir: Path, since: str, flips: str, threshold: float) -> pd.DataFrame:
    """The hard examples the two fields ask for (either may be empty; not both)."""
    scores, targets = score_table(run_dir)
    parts = []
    if since.strip():
        if not since.strip().isdigit():
            raise ValueError(f"wrong since {since!r}: an epoch number")
        k = int(since)
        parts.append(hard_frame(scores, targets, wrong_since(scores, targets, k, threshold), f"wrong since epoch {k}"))
    if flips.strip():
        try:
            m, n = (int(part) for part in flips.split("/"))
        except ValueError:
            raise ValueError(f"flip-flops {flips!r}: write it as M/N, e.g. 2/4 (2 changes in the last 4)") from None
        parts.append(hard_frame(scores, targets, flip_flops(scores, m, n, threshold), f"flip-flop {m}/{n}"))
    if not parts:
        raise ValueError("fill in an epoch, M/N, or both")
    return pd.concat(parts).drop_duplicates("img_name")


class HardExamplesScreen(DialogScreen[HardChoice | None]):
    DEFAULT_CSS = """
    HardExamplesScreen #hard-why { height: auto; margin-top: 1; }
    """
    BINDINGS = [Binding("escape", "dismiss", "Cancel")]

    def __init__(self, run_dir: Path, threshold: float, first_epoch: int) -> None:
        super().__init__()
        self.run_dir, self.threshold, self.first_epoch = run_dir, threshold, first_epoch

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text("Hard examples of this run's validations (either field, or both)", style="bold"))
            with Horizontal(classes="field"):
                yield Label("wrong since", classes="field-label")
                yield Input(str(self.first_epoch), id="hard-since", classes="field-input", compact=True)
            with Horizontal(classes="field"):
                yield Label("flip-flops M/N", classes="field-label")
                yield Input("", placeholder="2/4", id="hard-flips", classes="field-input", compact=True)
            yield Static(id="hard-why")
            with Horizontal(id="form-buttons"):
                yield Button("Show", variant="primary", id="hard-show")
                yield Button("Export CSV", id="hard-export")
                yield Button("Cancel", id="hard-cancel")

    def _frame(self) -> pd.DataFrame | None:
        since, flips = self.query_one("#hard-since", Input).value, self.query_one("#hard-flips", Input).value
        try:
            return choose(self.run_dir, since, flips, self.threshold)
        except (FfdvError, ValueError) as exc:
            self.query_one("#hard-why", Static).update(plain_text(str(exc), "red", multiline=True))
            return None

    @on(Button.Pressed, "#hard-show")
    def _show(self) -> None:
        frame = self._frame()
        if frame is not None:
            label = " + ".join(dict.fromkeys(frame["reason"])) or "hard examples"
            self.dismiss(HardChoice(frozenset(frame["img_name"].astype(str)), label))

    @on(Button.Pressed, "#hard-export")
    def _export(self) -> None:
        frame = self._frame()
        if frame is not None:
            out = write_hard_examples(frame, self.run_dir / "hard-examples.csv")
            self.query_one("#hard-why", Static).update(plain_text(f"wrote {len(frame)} images to {out}", "green"))

    @on(Button.Pressed, "#hard-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)
