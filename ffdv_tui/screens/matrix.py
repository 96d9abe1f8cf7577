"""A finished evaluation matrix: models x perturbations, heat-coloured by AUC, and AUC against JPEG quality.

The best of each column is bold and the change from the clean row is red when it drops.
On the highlighted row: ``s`` writes a submission from that model, ensemble or soup (an
engine job, as the checkpoints screen runs them); ``o`` opens its per-image scores under
the selected perturbation in the predictions screen, where the filter "flips from right
to wrong" shows what the perturbation broke; ``b`` shows, in place of the chart, each model's
AUC per source (generator, sub-folder) under that perturbation, where the datasets name sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Header, Label, Select, Static
from textual_plotext import PlotextPlot

from engine.contract.jobs import SubmissionResult, submission_args
from engine.contract.matrixstore import (
    CLEAN,
    MatrixStoreError,
    MatrixSummary,
    auc_by_jpeg,
    dataset_folder,
    open_matrix,
    read_by_source,
    row_predictions,
)
from engine.contract.submission import submission_in
from engine.contract.text import plain_text, printable
from ffdv_tui.screens.job import JobRequest, JobScreen
from ffdv_tui.screens.job_runner import JobRunnerScreen
from ffdv_tui.screens.predictions import PredictionSource, PredictionsScreen
from ffdv_tui.widgets.key_bar import KeyBar

DROP_RED = 0.01
LINE_COLOURS = ("green", "cyan", "magenta", "yellow", "blue", "red", "white")


def heat(auc: float | None) -> str:
    """A background from red (AUC 0.5 or below) through yellow to green (1.0)."""
    if auc is None:
        return ""
    t = min(1.0, max(0.0, (auc - 0.5) / 0.5))
    red = int(150 * (1 - t)) if t > 0.5 else 150
    green = int(150 * t / 0.5) if t < 0.5 else 150
    return f"on rgb({red},{green},40)"


def cell(auc: float | None, drop: float | None, best: bool) -> Text:
    text = Text("–" if auc is None else f"{auc:.4f}", style=("bold " if best else "") + heat(auc))
    if drop is not None and auc is not None and drop > 0.0005:
        text.append(f" {-drop:+.3f}", style="bold red" if drop > DROP_RED else "red")
    elif drop is not None and auc is not None and drop < -0.0005:
        text.append(f" {-drop:+.3f}", style="green")
    return text


def _value(row: pd.Series, key: str) -> float | None:
    value = row.get(key)
    return None if value is None or pd.isna(value) else float(value)


class MatrixScreen(JobRunnerScreen):
    JOB_NOTE = "#matrix-note"
    JOB_BAR = None

    @dataclass
    class RowOpened(Message):
        """A row's per-image scores were found (``source``, with what was set right in ``warnings``), or why not."""

        source: PredictionSource | None
        error: str | None = None
        warnings: list[str] = field(default_factory=list)

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("s", "submission", "Submission from row"),
        Binding("o", "open_scores", "Per-image scores"),
        Binding("b", "by_source", "Sources", tooltip="Each model's AUC per source (generator, sub-folder) under "
                "the selected perturbation, in place of the chart; b again: the chart"),
    ]

    def __init__(self, folder: Path, images: str = "halfcell") -> None:
        super().__init__()
        self.folder = Path(folder)
        self.images = images
        self.summary: MatrixSummary | None = None
        self.frame: pd.DataFrame | None = None
        self.warnings: list[str] = []
        self.models: list[str] = []
        self.by_source: pd.DataFrame | None = None  # by_source.csv, read at the first b
        self._by_source_read = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="matrix-body"):
            with Horizontal(id="matrix-controls"):
                yield Label("dataset")
                yield Select([], id="matrix-dataset", allow_blank=True, compact=True)
                yield Label("perturbation")
                yield Select([], id="matrix-perturbation", allow_blank=True, compact=True)
            yield DataTable(id="matrix-table", cursor_type="row", zebra_stripes=False, fixed_columns=1)
            yield PlotextPlot(id="matrix-chart")
            yield Static(id="matrix-legend")
            yield DataTable(id="matrix-sources", cursor_type="row", zebra_stripes=False, fixed_columns=1)
            yield Static(id="matrix-note")
        yield KeyBar()

    def on_mount(self) -> None:
        try:
            matrix = open_matrix(self.folder)
        except MatrixStoreError as exc:
            self.query_one("#matrix-note", Static).update(plain_text(f"damaged: {exc}", "red", multiline=True))
            return
        self.summary, self.frame, self.warnings = matrix.summary, matrix.frame, matrix.warnings
        self.app.sub_title = printable(f"matrix · {self.summary.name}")
        datasets = self.summary.datasets  # names from files: plain Text prompts, never markup
        self.query_one("#matrix-dataset", Select).set_options([(plain_text(d, limit=80), d) for d in datasets])
        self.query_one("#matrix-dataset", Select).value = datasets[0]
        perturbations = self.summary.perturbations
        self.query_one("#matrix-perturbation", Select).set_options([(plain_text(p, limit=80), p)
                                                                    for p in perturbations])
        self.query_one("#matrix-perturbation", Select).value = next((p for p in perturbations if p != CLEAN), CLEAN)
        self.show()
        self.query_one(DataTable).focus()

    @property
    def dataset(self) -> str | None:
        value = self.query_one("#matrix-dataset", Select).value
        return value if isinstance(value, str) else None

    @property
    def perturbation(self) -> str:
        value = self.query_one("#matrix-perturbation", Select).value
        return value if isinstance(value, str) else CLEAN

    @on(Select.Changed, "#matrix-dataset")
    def _dataset_changed(self) -> None:
        self.show()

    @on(Select.Changed, "#matrix-perturbation")
    def _perturbation_changed(self) -> None:
        if self.sources_shown:
            self._show_sources()

    @property
    def sources_shown(self) -> bool:
        return bool(self.query_one("#matrix-sources", DataTable).display)

    def show(self) -> None:
        if self.frame is None or self.summary is None or self.dataset is None:
            return
        part = self.frame[self.frame["dataset"] == self.dataset]
        perturbations = list(dict.fromkeys(part["perturbation"]))
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_column("model")
        for name in perturbations:  # keys left to the table: a perturbation may be called "model"
            table.add_column(plain_text(name))
        best = {p: part[part["perturbation"] == p]["auc"].max() for p in perturbations}
        self.models = []
        for model, rows in part.groupby("model", sort=False):
            cells: list[Text] = [plain_text(model)]
            by_perturbation = {str(r["perturbation"]): r for _, r in rows.iterrows()}
            for name in perturbations:
                row = by_perturbation.get(name)
                auc = _value(row, "auc") if row is not None else None
                drop = _value(row, "drop_auc") if row is not None else None
                cells.append(cell(auc, drop, auc is not None and auc == best[name]))
            table.add_row(*cells)
            self.models.append(str(model))
        self._chart(part)
        if self.sources_shown:
            self._show_sources()
        count = int(part["images"].max()) if len(part) else 0
        note = plain_text(f"{self.summary.title} · {count:,} images · s: submission from the row · o: its per-image "
                          f"scores under the selected perturbation", "dim")
        for warning in self.warnings:
            note.append_text(plain_text(f"\n{warning}", "yellow", multiline=True))
        self.query_one("#matrix-note", Static).update(note)

    def _chart(self, part: pd.DataFrame) -> None:
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        series = auc_by_jpeg(self.frame, self.dataset) if self.dataset else {}
        legend = self.query_one("#matrix-legend", Static)
        plot.display = legend.display = bool(series)
        if not series:
            return
        key = Text()  # below the plot: plotext's legend would cover its top lines
        for i, (model, points) in enumerate(series.items()):
            colour = LINE_COLOURS[i % len(LINE_COLOURS)]
            plt.plot([q for q, _ in points], [a for _, a in points], color=colour, marker="braille")
            key.append("── ", style=colour).append_text(plain_text(model, limit=30)).append("   ")
        legend.update(key)
        plt.title("AUC against JPEG quality (100 = clean)")
        plt.xlabel("JPEG quality")
        plot.refresh()

    def action_by_source(self) -> None:
        if not self._by_source_read and self.summary is not None:
            try:
                self.by_source, warnings = read_by_source(self.summary)
            except MatrixStoreError as exc:
                self.notify(printable(str(exc), 400), severity="error", timeout=10, markup=False)
                return
            self._by_source_read = True
            for warning in warnings:
                self.notify(printable(warning), severity="warning", timeout=10, markup=False)
        if self.by_source is None:
            self.notify("No per-source numbers in this matrix: none of its datasets names its sources (a "
                        "ForenSynths or GenImage layout, or a source column in the label file).",
                        severity="warning", markup=False)
            return
        sources = self.query_one("#matrix-sources", DataTable)
        sources.display = not sources.display
        if sources.display:
            self._show_sources()
        else:
            self.show()

    def _show_sources(self) -> None:
        """A row per model, a column per source and the mean over sources: AUC under the selected perturbation."""
        self.query_one(PlotextPlot).display = self.query_one("#matrix-legend", Static).display = False
        table = self.query_one("#matrix-sources", DataTable)
        table.clear(columns=True)
        frame = self.by_source
        part = frame[(frame["dataset"] == self.dataset) & (frame["perturbation"] == self.perturbation)]
        names = sorted(set(part["source"]) - {"mean"}) + (["mean"] if (part["source"] == "mean").any() else [])
        table.add_column(plain_text(f"AUC under {self.perturbation}", limit=40))
        for name in names:
            table.add_column(plain_text(name, limit=24))
        best = {n: part[part["source"] == n]["auc"].max() for n in names}
        for model, rows in part.groupby("model", sort=False):
            auc = {str(r["source"]): _value(r, "auc") for _, r in rows.iterrows()}
            table.add_row(plain_text(model), *[cell(auc.get(n), None, auc.get(n) is not None and auc.get(n) == best[n])
                                               for n in names])
        if not len(part):
            table.add_row(plain_text(f"no source of {self.dataset} is named in by_source.csv", "dim"))

    @property
    def row_model(self) -> str | None:
        table = self.query_one(DataTable)
        if not self.models or table.cursor_row is None or table.cursor_row >= len(self.models):
            return None
        return self.models[table.cursor_row]

    # ------------------------------------------------------------ actions

    def action_open_scores(self) -> None:
        model = self.row_model
        if model is None or self.summary is None or self.dataset is None:
            self.notify("No row here.", severity="warning")
            return
        self._open(model, self.dataset, self.perturbation)

    @work(thread=True, exclusive=True, group="matrix-open")
    def _open(self, model: str, dataset: str, perturbation: str) -> None:
        try:
            scores = row_predictions(self.summary, model, dataset, perturbation)
        except MatrixStoreError as exc:
            self.post_message(self.RowOpened(None, str(exc)))
            return
        member = self.summary.member(model) or {}
        checkpoint = Path(member["path"]) if member.get("kind") == "checkpoint" and member.get("path") else None
        source = PredictionSource(printable(f"{model} on {dataset} under {perturbation}"), {0: scores.path},
                                  dataset_folder(self.summary, dataset), checkpoint=checkpoint)  # m: its map
        self.post_message(self.RowOpened(source, warnings=scores.warnings))

    @on(RowOpened)
    def _row_opened(self, message: RowOpened) -> None:
        if message.source is None:
            self.notify(printable(message.error), severity="error", markup=False)
            return
        for warning in message.warnings:
            self.notify(printable(warning), severity="warning", timeout=10, markup=False)
        self.app.push_screen(PredictionsScreen(message.source, self.images))

    def action_submission(self) -> None:
        model = self.row_model
        if model is None or self.summary is None:
            self.notify("No row here.", severity="warning")
            return
        folder = dataset_folder(self.summary, self.dataset or "")
        data = str(folder.parent) if folder is not None else ""
        out = submission_in(self.summary.folder, f"{model}-test")
        self.app.push_screen(JobScreen(printable(f"Write a submission from {model}"), data, "test", str(out)),
                             lambda request: request and self._predict(model, request))

    def _predict(self, model: str, request: JobRequest) -> None:
        try:
            args = submission_args(self.summary, model, str(request.data), request.split,
                                   str(request.out) if request.out else None)
        except MatrixStoreError as exc:
            self.post_message(self.JobDone(plain_text(f"submission failed: {exc}", "red")))
            return

        def finish(result: SubmissionResult) -> JobRunnerScreen.JobDone:
            return self.JobDone(plain_text(f"submission written: {result.submission} ({result.rows:,} rows)", "green"))

        self.run_job(args, SubmissionResult, f"writing a submission from {model}…", "submission failed", finish)
