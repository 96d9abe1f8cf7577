"""The evaluation-matrix form: datasets, perturbations (a checklist and custom specs, checked as typed), ensembles, TTA."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, SelectionList, Static

from engine.contract.errors import FfdvError
from engine.contract.perturbspec import STANDARD_SUITE, check_spec
from engine.contract.text import plain_text, printable
from ffdv_tui.screens.dialog import DialogScreen
from ffdv_tui.widgets.path_suggester import PathSuggester

ENSEMBLE_CHOICES = (("mean of probabilities", "mean"), ("mean of ranks", "rank"), ("weight average (soup)", "soup"),
                    ("greedy soup", "greedy"))
TTA_CHOICES = (("horizontal flip", "flip"), ("scales 0.875 / 1 / 1.125", "scales"))


def spec_problem(text: str) -> str | None:
    """What is wrong with a typed spec, or None; the form's boundary, so no spec or suite file can end the app.

    check_spec answers most problems; a value it cannot turn into a number (``jpeg:inf``), a suite that
    names itself (endless recursion) or an unreadable path raise instead, and are said the same way.
    """
    if not text:
        return None
    try:
        return check_spec(text)
    except RecursionError:
        return f"{printable(text, 200)}: a suite file that names itself (directly or through another); remove that line"
    except (FfdvError, ValueError, OverflowError, OSError, RuntimeError) as exc:
        return f"{printable(text, 200)}: {printable(exc, 400)}"


def missing_folder(datasets: list[str]) -> str | None:
    """The first dataset that is not a folder here (``~nobody`` and NUL bytes included), or None."""
    for dataset in datasets:
        try:
            if Path(dataset).expanduser().exists():
                continue
        except (RuntimeError, ValueError, OSError):  # ~user with no such user; a NUL byte
            pass
        return dataset
    return None


@dataclass(frozen=True)
class MatrixRequest:
    datasets: list[str]
    perturbations: list[str]
    ensembles: list[str]
    tta: list[str]


class MatrixFormScreen(DialogScreen[MatrixRequest | None]):
    DEFAULT_CSS = """
    MatrixFormScreen > #dialog {
        width: 96;
        max-height: 100%;
    }
    MatrixFormScreen Input {
        width: 1fr;
    }
    MatrixFormScreen SelectionList {
        height: auto;
        max-height: 12;
        margin-bottom: 1;
    }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "start", "Start", priority=True)]

    def __init__(self, title: str, datasets: list[str], several: bool) -> None:
        super().__init__()
        self.title_text = title
        self.datasets = datasets
        self.several = several

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(plain_text(self.title_text), id="matrix-form-title")
            with Horizontal(classes="field"):
                yield Label("Datasets", classes="field-label")
                yield Input(" ".join(self.datasets), id="matrix-data", compact=True, suggester=PathSuggester(),
                            placeholder="split folders or dataset roots (val), separated by spaces; → completes")
            yield Label("Perturbations")
            yield SelectionList[str](*[(spec, spec, True) for spec in STANDARD_SUITE if spec != "none"],
                                     id="matrix-perturbations", compact=True)
            with Horizontal(classes="field"):
                yield Label("Also", classes="field-label")
                yield Input("", id="matrix-custom", compact=True, placeholder="jpeg:60, resize:0.7+jpeg:80 …")
            yield Label("Ensembles" + ("" if self.several else " (mark several checkpoints for these)"))
            yield SelectionList[str](*[(label, key, self.several and key == "mean") for label, key in ENSEMBLE_CHOICES],
                                     id="matrix-ensembles", compact=True)
            yield Label("Test-time augmentation (rows beside the plain ones)")
            yield SelectionList[str](*[(label, key, False) for label, key in TTA_CHOICES], id="matrix-tta", compact=True)
            yield Static("", id="matrix-why")
            with Horizontal(id="form-buttons"):
                yield Button("Start", variant="success", id="start")
                yield Button("Cancel", id="cancel")

    @on(Input.Changed, "#matrix-custom")
    def _check_custom(self, event: Input.Changed) -> None:
        problem = spec_problem(event.value.strip())
        self.query_one("#matrix-why", Static).update(plain_text(problem or "", "red"))

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        why = self.query_one("#matrix-why", Static)
        datasets = self.query_one("#matrix-data", Input).value.split()
        missing = missing_folder(datasets)
        if not datasets or missing:
            why.update(plain_text(f"{missing}: no such folder" if missing else "give at least one dataset", "red"))
            return
        custom = self.query_one("#matrix-custom", Input).value.strip()
        problem = spec_problem(custom)
        if problem:
            why.update(plain_text(problem, "red"))
            return
        perturbations = list(self.query_one("#matrix-perturbations", SelectionList).selected)
        if custom:
            perturbations.append(custom)
        self.dismiss(MatrixRequest([str(Path(d).expanduser()) for d in datasets], perturbations,
                                   list(self.query_one("#matrix-ensembles", SelectionList).selected),
                                   list(self.query_one("#matrix-tta", SelectionList).selected)))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
