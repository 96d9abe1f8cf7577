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
from ffdv_tui.explain_maps import checkpoint_for
from ffdv_tui.kept_settings import keep
from ffdv_tui.kept_settings import kept as kept_settings
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
from ffdv_tui.screens.input_exits import InputExits
from ffdv_tui.screens.predictions_judging import SlicesAndPoints
from ffdv_tui.widgets.explained_preview import ExplainedPreview
from ffdv_tui.widgets.frame_table import Column, FrameTable
from ffdv_tui.widgets.image_preview import ImagePreview
from ffdv_tui.widgets.key_bar import KeyBar

NEW_EPOCH_CHECK_S = 1.0  # how often an open screen looks for a new validation's predictions
LABELS = {0: "real", 1: "fake", -1: "–"}
COLUMNS = [
    Column("img_name", "image", 24, min_width=12),
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
    checkpoint: Path | None = None  # what made an evaluation's predictions (a run's come from its checkpoints)


def run_source(run_dir: Path, data_root: str) -> PredictionSource:
    return PredictionSource(run_dir.name, prediction_files(run_dir), split_folder(data_root, "val"), run_dir)


class PredictionsScreen(SlicesAndPoints, InputExits, Screen):
    TABLE = "#pred-table"
    BINDINGS = [
        *InputExits.EXIT_BINDINGS,
        Binding("slash", "focus('#search')", "Search"),
        Binding("t", "focus('#threshold')", "Threshold"),
        Binding("e", "eer", "EER threshold"),
        Binding("f", "next_filter", "Filter (the next)"),
        Binding("m", "toggle_map", "Map", tooltip="Flip the preview between the image and where the model looks "
                "for fake (Grad-CAM, computed by the engine once per checkpoint and image)"),
        Binding("z", "toggle_spectrum", "Spectrum", tooltip="Flip the preview between the image and the "
                "log-magnitude spectrum of its high-pass residual (up-sampling grids show as peaks)"),
        Binding("h", "histogram", "Histogram", tooltip="The scores of real and fake images, with the threshold"),
        Binding("w", "hard_examples", "Hard examples", tooltip="Only the images wrong since epoch k or flip-flopping "
                "(m of the last n validations); export them as CSV. Again: all images"),
        Binding("g", "gallery", "Gallery", tooltip="The filtered images as a grid of thumbnails; Enter opens one "
                "here with its map"),
        *SlicesAndPoints.JUDGING_BINDINGS,
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
        order: tuple = ()  # filter, sort, search: a new one starts the table at the top

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
        self.hard = None  # a HardChoice: only those images are shown
        self._last_order: tuple | None = None  # filter, sort, search of the rows shown: a new one starts at the top
        self._epochs = list(source.files)

    @property
    def settings_key(self) -> tuple[str, str]:
        return ("predictions", str(self.source.run_dir or self.source.title))

    def compose(self) -> ComposeResult:
        yield Header()
        epochs = list(self.source.files)
        kept = kept_settings(self.app, self.settings_key)
        with Horizontal(id="pred-controls"):
            yield Select([(f"epoch {e}" if e else "evaluation", e) for e in reversed(epochs)], id="epoch",
                         allow_blank=not epochs, value=epochs[-1] if epochs else Select.NULL, compact=True)
            yield Select([(label, key) for key, label in FILTERS.items()], id="filter",
                         value=kept.get("filter", "all"), allow_blank=False, compact=True)
            yield Select([(label, key) for key, label in SORTS.items()], id="sort", value=kept.get("sort", "score"),
                         allow_blank=False, compact=True)
        with Horizontal(id="pred-controls-2"):
            yield Label("threshold")
            yield Input(kept.get("threshold", "0.5"), id="threshold", compact=True)
            yield Button("at EER (e)", id="eer", compact=True)
            yield Input(kept.get("search", ""), placeholder="search image names (/)", id="search", compact=True)
        yield Static(id="pred-metrics")
        yield from self.judging_row()
        with Horizontal(id="pred-body"):
            yield FrameTable(COLUMNS, id="pred-table", classes="pane")
            yield ExplainedPreview(self.images_mode, self._checkpoint, id="preview", classes="pane")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(FrameTable).focus()
        if self.source.run_dir is not None:  # a run's validations: a new one appears while the screen is open
            self.set_interval(NEW_EPOCH_CHECK_S, self._look_for_new_epochs)
        if not self.source.files:
            self.query_one("#pred-metrics", Static).update(
                Text("No predictions yet: a run writes them after each validation.", style="yellow"))
            return
        self._load(self.query_one("#epoch", Select).value)

    def on_screen_resume(self) -> None:
        self.app.sub_title = f"predictions · {printable(self.source.title)}"

    def _look_for_new_epochs(self) -> None:
        """A validation written since the screen opened joins the epoch list; shown at once if the newest was."""
        files = prediction_files(self.source.run_dir)
        if list(files) == self._epochs:
            return
        select = self.query_one("#epoch", Select)
        current = select.value
        was_newest = not self._epochs or current == self._epochs[-1]
        self.source.files.clear()
        self.source.files.update(files)
        self._epochs = list(files)
        with self.prevent(Select.Changed):
            select.set_options([(f"epoch {e}" if e else "evaluation", e) for e in reversed(self._epochs)])
            if not was_newest and current in files:
                select.value = current
        if self.history is not None:
            self.history = ScoreHistory(self.source.run_dir)
            self._history_loaded = False
        if was_newest and self._epochs:
            select.value = self._epochs[-1]  # Select.Changed loads it

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
        keep(self.app, self.settings_key, filter=filter_name, sort=sort,
             threshold=self.query_one("#threshold", Input).value, search=self.query_one("#search", Input).value)
        self._compute(self.table_data, threshold, filter_name, sort, search, self.shown_names())
        self.show_judging(threshold)

    @work(thread=True, exclusive=True, group="predictions-view")
    def _compute(self, table: PredictionTable, threshold: float, filter_name: str, sort: str, search: str,
                 names: frozenset[str] | None = None) -> None:
        view = table.view(threshold, filter_name, sort, search)
        if names is not None:  # the hard examples (w) and the chosen slice
            view = view[view["img_name"].astype(str).isin(names)]
        counts = table.counts(threshold)
        confusion = table.confusion(threshold)
        self.post_message(self.Computed(view, counts, confusion, threshold, (filter_name, sort, search)))

    @on(Computed)
    def _show(self, message: Computed) -> None:
        view, counts, confusion, threshold = message.view, message.counts, message.confusion, message.threshold
        # the same rows at another threshold keep the cursor on its image; a new filter, sort or search starts at the top
        keep = self.query_one(FrameTable).index_at(self.query_one(FrameTable).cursor_row)
        if message.order != self._last_order:
            keep = None
        self._last_order = message.order
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
            (f"{len(view):,} shown", "bold"), (f" ({self.hard.label}, w: all)" if self.hard else "", "yellow"),
            f" of {len(self.table_data.frame):,} · at threshold {threshold:.3f}: ",
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

    def _checkpoint(self) -> Path | None:
        epoch = self.query_one("#epoch", Select).value
        return checkpoint_for(self.source.run_dir, epoch if isinstance(epoch, int) else None, self.source.checkpoint)

    def action_toggle_map(self) -> None:
        self.query_one(ExplainedPreview).toggle_map()

    def action_toggle_spectrum(self) -> None:
        self.query_one(ExplainedPreview).toggle_spectrum()

    def action_histogram(self) -> None:
        if self.table_data is not None and self.threshold is not None:
            from ffdv_tui.screens.score_histogram import ScoreHistogramScreen

            self.app.push_screen(ScoreHistogramScreen(self.table_data.score, self.table_data.target, self.threshold))

    def action_hard_examples(self) -> None:
        if self.hard is not None:  # w again: back to every image
            self.hard = None
            self._recompute()
            return
        if self.source.run_dir is None or not self.source.files:
            self.notify("Hard examples come from a run's validations; this is an evaluation.", severity="warning")
            return
        from ffdv_tui.screens.hard_examples import HardExamplesScreen

        self.app.push_screen(HardExamplesScreen(self.source.run_dir, self.threshold or 0.5, min(self.source.files)),
                             self._hard_chosen)

    def _hard_chosen(self, choice) -> None:
        if choice is not None:
            self.hard = choice
            self._recompute()

    def action_gallery(self) -> None:
        if self._view is None or not len(self._view):
            return
        from ffdv_tui.screens.gallery import GalleryScreen

        preview = self.query_one(ExplainedPreview)
        self.app.push_screen(GalleryScreen(self._view, self.source.images, self.images_mode, preview.cache),
                             self._picked)

    def _picked(self, index) -> None:
        """Back from the gallery: the chosen image highlighted, its map on."""
        if index is None or self._view is None:
            return
        self.query_one(ExplainedPreview).view = "map"  # drawn when the row's highlight reaches the preview
        self.query_one(FrameTable).set_frame(self._view, keep_index=index)

    # ------------------------------------------------------------ the highlighted image

    @on(FrameTable.RowHighlighted, "#pred-table")
    def _row(self, event: FrameTable.RowHighlighted) -> None:
        if self._view is None or event.index is None or event.index not in self._view.index:
            return  # announced for rows the table showed before the newest view
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
