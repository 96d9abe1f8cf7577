"""Per-image predictions of a run's validations (or of an evaluation): what the detector gets wrong.

Pick the validation (newest by default), filter (misclassified, false positives, false
negatives, uncertain), sort, search by name, move the threshold (or put it at the EER)
and watch the confusion matrix and metrics follow. The highlighted image is drawn
beside the table with its label, score and score over the epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Header, Input, Label, Select, Static

from engine.contract.fmt import fmt_metric
from engine.contract.text import plain_text, printable
from engine.data.dataset import split_folder
from ffdv_tui.operating_points import stored_points
from ffdv_tui.predictions import (
    FILTERS,
    SORTS,
    PredictionsError,
    PredictionTable,
    ScoreHistory,
    eer_threshold,
    load_predictions,
    prediction_files,
)
from ffdv_tui.widgets.frame_table import Column, FrameTable
from ffdv_tui.widgets.image_preview import ImagePreview
from ffdv_tui.widgets.key_bar import KeyBar
from ffdv_tui.widgets.reliability import ReliabilityDiagram
from ffdv_tui.widgets.slices_table import SlicesTable

LABELS = {0: "real", 1: "fake", -1: "–"}
COLUMNS = [
    Column("img_name", "image", 24),
    Column("target", "true", 5, lambda v: LABELS.get(int(v), "?")),
    Column("score", "fake score", 10, lambda v: f"{v:.4f}", "right"),
    Column("pred", "called", 6, lambda v: LABELS.get(int(v), "?")),
    Column("correct", "", 2, lambda v: "✓" if v else "✗", style=lambda v: "green" if v else "bold red"),
]


@dataclass(frozen=True)
class PredictionSource:
    """Where predictions come from: a run's validations, or one evaluation file, and their images."""

    title: str
    files: dict[int, Path]  # epoch (or 0 for an evaluation) -> CSV
    images: Path | None  # the folder the img_names are in
    run_dir: Path | None = None  # for the score history over epochs


def run_source(run_dir: Path, data_root: str) -> PredictionSource:
    return PredictionSource(run_dir.name, prediction_files(run_dir), split_folder(data_root, "val"), run_dir)


class PredictionsScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("slash", "focus('#search')", "Search"),
        Binding("t", "focus('#threshold')", "Threshold"),
        Binding("e", "eer", "At EER"),
        Binding("f", "next_filter", "Next filter"),
        Binding("s", "next_slice", "Slice by"),
        Binding("c", "next_point", "Stored threshold"),
    ]

    @dataclass
    class Loaded(Message):
        """An epoch's predictions were read (``table``), or could not be (``error``)."""

        table: PredictionTable | None
        error: str | None = None

    @dataclass
    class Computed(Message):
        """The rows, counts and confusion matrix at one threshold, filter, sort and search."""

        view: Any
        counts: dict[str, int]
        confusion: Any
        threshold: float

    class HistoryLoaded(Message):
        """Every epoch's score of every image is known (the preview's sparkline)."""

    def __init__(self, source: PredictionSource, images: str = "halfcell") -> None:
        super().__init__()
        self.source = source
        self.images_mode = images
        self.table_data: PredictionTable | None = None
        self.history = ScoreHistory(source.run_dir) if source.run_dir else None
        self._history_loaded = False
        self._view = None
        self._slice: frozenset[str] | None = None  # the image names of the chosen slice (SlicesTable)
        self._point = -1  # the stored threshold last chosen with c

    def compose(self) -> ComposeResult:
        yield Header()
        epochs = list(self.source.files)
        with Horizontal(id="pred-controls"):
            yield Select([(f"epoch {e}" if e else "evaluation", e) for e in reversed(epochs)], id="epoch",
                         allow_blank=not epochs, value=epochs[-1] if epochs else Select.NULL, compact=True)
            yield Select([(label, key) for key, label in FILTERS.items()], id="filter", value="all",
                         allow_blank=False, compact=True)
            yield Select([(label, key) for key, label in SORTS.items()], id="sort", value="score", allow_blank=False,
                         compact=True)
        with Horizontal(id="pred-controls-2"):
            yield Label("threshold")
            yield Input("0.5", id="threshold", compact=True)
            yield Button("at EER (e)", id="eer", compact=True)
            yield Input(placeholder="search image names (/)", id="search", compact=True)
        yield Static(id="pred-metrics")
        with Horizontal(id="pred-judge"):
            yield SlicesTable(id="slices", classes="pane")
            yield ReliabilityDiagram(id="reliability", classes="pane")
        with Horizontal(id="pred-body"):
            yield FrameTable(COLUMNS, id="pred-table", classes="pane")
            yield ImagePreview(self.images_mode, id="preview", classes="pane")
        yield KeyBar()

    def on_mount(self) -> None:
        self.app.sub_title = f"predictions · {printable(self.source.title)}"
        if not self.source.files:
            self.query_one("#pred-metrics", Static).update(
                Text("No predictions yet: a run writes them after each validation.", style="yellow"))
            return
        self._load(self.query_one("#epoch", Select).value)
        self.query_one(FrameTable).focus()

    # ------------------------------------------------------------ loading and recomputing

    @work(thread=True, exclusive=True, group="predictions-load")
    def _load(self, epoch: int) -> None:
        path = self.source.files.get(epoch)
        try:
            self.post_message(self.Loaded(PredictionTable(load_predictions(path))))
        except PredictionsError as exc:
            self.post_message(self.Loaded(None, str(exc)))

    def _show_error(self, message: str) -> None:
        self.query_one("#pred-metrics", Static).update(plain_text(message, "red", multiline=True))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if message.table is None:
            self._show_error(message.error or "")
            return
        self.table_data = message.table
        self.query_one(ReliabilityDiagram).show(message.table.score, message.table.target)
        self._recompute()

    @property
    def threshold(self) -> float | None:
        try:
            value = float(self.query_one("#threshold", Input).value)
        except ValueError:
            return None
        return value if 0.0 <= value <= 1.0 else None

    def _recompute(self) -> None:
        threshold = self.threshold
        if self.table_data is None or threshold is None:
            if threshold is None:
                self._show_error("the threshold must be a number between 0 and 1")
            return
        filter_name = self.query_one("#filter", Select).value
        sort = self.query_one("#sort", Select).value
        search = self.query_one("#search", Input).value.strip()
        self._compute(self.table_data, threshold, filter_name, sort, search, self._slice)
        self.query_one(SlicesTable).show(self.table_data.frame, threshold, self.source.images)

    @work(thread=True, exclusive=True, group="predictions-view")
    def _compute(self, table: PredictionTable, threshold: float, filter_name: str, sort: str, search: str,
                 names: frozenset[str] | None = None) -> None:
        view = table.view(threshold, filter_name, sort, search)
        if names is not None:
            view = view[view["img_name"].isin(names)]
        counts = table.counts(threshold)
        confusion = table.confusion(threshold)
        self.post_message(self.Computed(view, counts, confusion, threshold))

    @on(Computed)
    def _show(self, message: Computed) -> None:
        view, counts, confusion, threshold = message.view, message.counts, message.confusion, message.threshold
        keep = self.query_one(FrameTable).index_at(self.query_one(FrameTable).cursor_row)
        self._view = view
        self.query_one(FrameTable).set_frame(view, keep_index=keep)
        select = self.query_one("#filter", Select)
        current = select.value
        with self.prevent(Select.Changed):
            select.set_options([(f"{label} ({counts[key]:,})", key) for key, label in FILTERS.items()])
            # set_options picks the first option; its label is drawn only when the value changes
            select.value = next(key for key in FILTERS if key != current)
            select.value = current
        c = confusion
        metrics = Text.assemble(
            (f"{len(view):,} shown", "bold"), f" of {len(self.table_data.frame):,} · at threshold {threshold:.3f}: ",
            f"acc {fmt_metric(c.accuracy)} · prec {fmt_metric(c.precision)} · recall {fmt_metric(c.recall)} · "
            f"F1 {fmt_metric(c.f1)} · ", ("TN", "bold"), f" {c.tn:,} ", ("FP", "bold red"), f" {c.fp:,} ",
            ("FN", "bold red"), f" {c.fn:,} ", ("TP", "bold"), f" {c.tp:,}",
        )
        self.query_one("#pred-metrics", Static).update(metrics)

    @on(Select.Changed, "#epoch")
    def _epoch_changed(self, event: Select.Changed) -> None:
        if event.value is not Select.BLANK:
            self._load(event.value)

    @on(Select.Changed, "#filter")
    @on(Select.Changed, "#sort")
    def _view_changed(self) -> None:
        self._recompute()

    @on(Input.Changed, "#search")
    @on(Input.Changed, "#threshold")
    def _typed(self) -> None:
        self._recompute()

    @on(Button.Pressed, "#eer")
    def action_eer(self) -> None:
        if self.table_data is None:
            return
        threshold = eer_threshold(self.table_data.score, self.table_data.target)
        if threshold is None:
            self.notify("The EER needs both real and fake images.", severity="warning")
            return
        self.query_one("#threshold", Input).value = f"{threshold:.4f}"

    def action_next_point(self) -> None:
        """The next threshold `ffdv calibrate` stored for the run's best checkpoint (at FPR 1e-3, 1e-2, 5e-2, balanced)."""
        points, split = stored_points(self.source.run_dir)
        if not points:
            self.notify("No stored thresholds: run `ffdv calibrate --checkpoint RUN --data VAL` first.",
                        severity="warning", markup=False)
            return
        self._point = (self._point + 1) % len(points)
        name, threshold = points[self._point]
        self.query_one("#threshold", Input).value = f"{threshold:.6f}"
        self.notify(printable(f"{name}: threshold {threshold:.4f} of the best checkpoint, fitted on {split}", 300),
                    markup=False)

    def action_next_slice(self) -> None:
        self.query_one(SlicesTable).next_column()

    @on(SlicesTable.Selected)
    def _slice_selected(self, message: SlicesTable.Selected) -> None:
        self._slice = message.names
        self._recompute()

    def action_next_filter(self) -> None:
        select = self.query_one("#filter", Select)
        keys = list(FILTERS)
        select.value = keys[(keys.index(select.value) + 1) % len(keys)]

    # ------------------------------------------------------------ the highlighted image

    @on(FrameTable.RowHighlighted, "#pred-table")
    def _row(self, event: FrameTable.RowHighlighted) -> None:
        if self._view is None or event.index is None or event.index not in self._view.index:
            return  # a row of the view before the last filter, sort or slice
        row = self._view.loc[event.index]
        name = str(row["img_name"])
        caption = Text.assemble((printable(name), "bold"), "\n", f"true {LABELS.get(int(row['target']), '?')} · ",
                                f"fake score {row['score']:.4f} · called {LABELS.get(int(row['pred']), '?')}",
                                (" ✓" if row["correct"] else " ✗", "green" if row["correct"] else "bold red"))
        path = self.source.images / name if self.source.images else None
        history = self.history.of(name) if self.history is not None and self._history_loaded else []
        self.query_one(ImagePreview).show(path, caption, history)
        if self.history is not None and not self._history_loaded:
            self._load_history()

    @work(thread=True, exclusive=True, group="score-history")
    def _load_history(self) -> None:
        self.history.load()
        self._history_loaded = True
        self.post_message(self.HistoryLoaded())

    @on(HistoryLoaded)
    def _refresh_preview(self) -> None:
        table = self.query_one(FrameTable)
        if table.row_count:
            table.post_message(FrameTable.RowHighlighted(table, table.cursor_row, table.index_at(table.cursor_row)))
