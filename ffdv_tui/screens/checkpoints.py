"""Every checkpoint of every run, and what to do with one: evaluate, predict a submission, fine-tune, resume, compare.

Evaluating and predicting are engine processes started in the background; their
progress and result appear in the side panel, and an evaluation's per-image
predictions open in the predictions screen (o).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Header, ProgressBar, Static

from engine.contract.fmt import fmt_bytes, fmt_count, fmt_metric
from engine.contract.jobs import (
    EvaluationResult,
    JobError,
    MatrixResult,
    SubmissionResult,
    checkpoint_job_args,
    matrix_args,
    run_engine_job,
)
from engine.contract.matrixstore import list_matrices
from engine.contract.protocol import METRIC_LABELS
from engine.contract.submission import check_submission, default_submission
from engine.contract.text import plain_text, printable
from engine.data.dataset import split_folder
from ffdv_tui.checkpoint_catalog import (
    CheckpointEntry,
    catalog_frame,
    list_checkpoints,
)
from ffdv_tui.checkpoint_columns import fitted_columns, marks
from ffdv_tui.screens.job import JobRequest, JobScreen
from ffdv_tui.screens.job_runner import JobRunnerScreen
from ffdv_tui.screens.matrix import MatrixScreen
from ffdv_tui.screens.matrix_form import MatrixFormScreen, MatrixRequest
from ffdv_tui.screens.matrix_list import MatrixListScreen
from ffdv_tui.screens.predictions import PredictionSource, PredictionsScreen
from ffdv_tui.widgets.frame_table import FrameTable
from ffdv_tui.widgets.key_bar import KeyBar


def describe(entry: CheckpointEntry) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("run", plain_text(entry.run))
    table.add_row("file", plain_text(entry.path))
    table.add_row("model", plain_text(f"{entry.model or '?'} at {entry.img_size or '?'} px"))
    epoch = f"{entry.epoch}" + (f" (step {entry.step}, {entry.reason})" if entry.reason and entry.reason != "epoch" else "")
    table.add_row("epoch", plain_text(epoch))
    for key, label in METRIC_LABELS.items():
        table.add_row(label, fmt_metric(entry.metrics.get(key)))
    if entry.calibration:
        table.add_row("calibrated", calibration_text(entry.calibration, entry.data_root))
    table.add_row("size", fmt_bytes(entry.size))
    table.add_row("resumable", "yes (training state beside it)" if entry.resumable else "no")
    if entry.problem:
        table.add_row("problem", plain_text(entry.problem, "red"))
    return table


def calibration_text(calibration: dict, data_root: str | None) -> Text:
    """Temperature, ECE before and after, the stored thresholds, and the split it was fitted on (marked when that is
    not the run's own data)."""
    split = str(calibration.get("split", "?"))
    points = " · ".join(f"{k} {v.get('raw', 0):.4f}" for k, v in calibration.get("thresholds", {}).items()
                        if isinstance(v, dict) and isinstance(v.get("raw"), (int, float)))
    ece = f"ECE {fmt_metric(calibration.get('ece_before'))} → {fmt_metric(calibration.get('ece_after'))}"
    text = plain_text(f"T {calibration['temperature']:.3f} · {ece}\n{points}\non {split}", multiline=True)
    if data_root and not split.startswith(str(Path(data_root).expanduser().resolve())):
        text.append(printable("\n(another split than this run's data)"), style="yellow")
    return text


def compare(a: CheckpointEntry, b: CheckpointEntry) -> Table:
    title = Text(f"compare  A = {printable(a.key)}\n         B = {printable(b.key)}", style="table.title")
    table = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    table.add_column("")
    table.add_column("A (marked)", justify="right")
    table.add_column("B", justify="right")
    table.add_column("B − A", justify="right")
    for key, label in METRIC_LABELS.items():
        x, y = a.metrics.get(key), b.metrics.get(key)
        delta = f"{y - x:+.4f}" if isinstance(x, (int, float)) and isinstance(y, (int, float)) else "–"
        table.add_row(label, fmt_metric(x), fmt_metric(y), delta)
    return table


class CheckpointsScreen(JobRunnerScreen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("e", "evaluate", "Evaluate"),
        Binding("s", "submission", "Submission"),
        Binding("f", "fine_tune", "Fine-tune"),
        Binding("r", "resume", "Resume run"),
        Binding("m", "mark", "Mark to compare"),
        Binding("o", "open_predictions", "Predictions of the evaluation"),
        Binding("space", "choose", "Pick for a matrix"),
        Binding("x", "matrix", "Matrix of the picked checkpoints"),
        Binding("l", "past_matrices", "Matrices made before"),  # not p: p pauses a run on the workbench
    ]

    @dataclass
    class Listed(Message):
        """The catalog was read (again)."""

        entries: list[CheckpointEntry]

    @dataclass
    class MatrixDone(Message):
        """The matrix job ended: its folder, or why it failed."""

        folder: Path | None
        error: str | None = None

    def __init__(self, runs_dir: Path, model_names: Callable[[], list[str]] | None = None,
                 images: str = "halfcell") -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.model_names = model_names  # timm's names, to tell a sidecar naming an unknown model
        self.images = images
        self.entries: list[CheckpointEntry] = []
        self.marked: CheckpointEntry | None = None
        self.last_evaluation: PredictionSource | None = None
        self.chosen: dict[str, CheckpointEntry] = {}  # marked for an evaluation matrix, in marking order

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="ckpt-body"):
            yield FrameTable(fitted_columns([], 80), id="ckpt-table", classes="pane")
            with Vertical(id="ckpt-side", classes="pane"):
                yield Static(id="ckpt-detail")
                yield ProgressBar(id="job-progress", show_eta=True)
                yield Static(id="job-result")
        yield KeyBar()

    def on_screen_resume(self) -> None:
        self.app.sub_title = f"checkpoints · {printable(self.runs_dir)}"  # again when a screen above it closes

    def on_mount(self) -> None:
        self.query_one("#job-progress").display = False
        self.reload()
        self.query_one(FrameTable).focus()

    @work(thread=True, exclusive=True, group="catalog")
    def reload(self) -> None:
        self.post_message(self.Listed(list_checkpoints(self.runs_dir)))
        if self.model_names is not None:  # the first listing of timm's names can take seconds: check after
            try:
                names = set(self.model_names())
            except Exception:
                return
            self.post_message(self.Listed(list_checkpoints(self.runs_dir, names)))

    @on(Listed)
    def _listed(self, message: Listed) -> None:
        entries = message.entries
        keep = self.highlighted.key if self.highlighted else None
        self.entries = entries
        index = next((i for i, e in enumerate(entries) if e.key == keep), None)
        self._show(index)
        if not entries:
            self.query_one("#ckpt-detail", Static).update(plain_text(f"No checkpoints in {self.runs_dir}/ yet."))

    def _show(self, keep_index: int | None = None) -> None:
        """The entries in the table, its columns fitted to its width, the marked rows marked."""
        table = self.query_one(FrameTable)
        chosen = set(self.chosen)
        compared = self.marked.key if self.marked else None
        frame = catalog_frame(self.entries).assign(mark=[marks(e, compared, chosen) for e in self.entries])
        table.columns = fitted_columns(self.entries, table.scrollable_content_region.width or self.size.width)
        table.set_frame(frame, keep_index=keep_index)

    def on_resize(self) -> None:
        self.call_after_refresh(self._refit)

    def _refit(self) -> None:
        if self.entries and self.is_attached:
            self._show(self.query_one(FrameTable).index_at(self.query_one(FrameTable).cursor_row))

    @property
    def highlighted(self) -> CheckpointEntry | None:
        table = self.query_one(FrameTable)
        index = table.index_at(table.cursor_row)
        return self.entries[index] if index is not None and index < len(self.entries) else None

    @on(FrameTable.RowHighlighted, "#ckpt-table")
    def _highlight(self, event: FrameTable.RowHighlighted) -> None:
        entry = self.highlighted
        if entry is None:
            return
        parts = [describe(entry)]
        if self.marked is not None and self.marked.key != entry.key:
            parts.append(compare(self.marked, entry))
        elif self.marked is not None:
            parts.append(Text("marked: move to another checkpoint to compare", style="dim"))
        if self.chosen:
            parts.append(Text.assemble(("for a matrix (x): ", "bold"), printable(", ".join(self.chosen))))
        self.query_one("#ckpt-detail", Static).update(Group(*parts))

    def action_mark(self) -> None:
        entry = self.highlighted
        if entry is not None:
            self.marked = None if self.marked is not None and self.marked.key == entry.key else entry
            self.notify(f"marked {printable(entry.key)} to compare" if self.marked else "mark cleared", timeout=3,
                        markup=False)
            self._show(self.query_one(FrameTable).index_at(self.query_one(FrameTable).cursor_row))

    def action_choose(self) -> None:
        entry = self.highlighted
        if entry is None:
            return
        if self.chosen.pop(entry.key, None) is None:
            self.chosen[entry.key] = entry
        self.notify(f"{fmt_count(len(self.chosen), 'checkpoint')} picked for a matrix", timeout=3)
        self._show(self.query_one(FrameTable).index_at(self.query_one(FrameTable).cursor_row))

    # ------------------------------------------------------------ evaluation matrix

    def _matrix_entries(self) -> list[CheckpointEntry]:
        if self.chosen:
            return list(self.chosen.values())
        entry = self._usable()
        return [entry] if entry is not None else []

    def action_matrix(self) -> None:
        entries = self._matrix_entries()
        if not entries:
            return
        datasets = []
        for entry in entries:  # the runs' own validation splits
            folder = split_folder(entry.data_root, "val") if entry.data_root else None
            if folder is not None and str(folder) not in datasets:
                datasets.append(str(folder))
        title = f"Evaluation matrix of {', '.join(printable(e.key) for e in entries)}"
        self.app.push_screen(MatrixFormScreen(title, datasets, several=len(entries) > 1),
                             lambda request: request and self._start_matrix(entries, request))

    def _start_matrix(self, entries: list[CheckpointEntry], request: MatrixRequest) -> None:
        args = matrix_args([str(e.path) for e in entries], request.datasets, request.perturbations, request.ensembles,
                           request.tta)
        self._job_started(self.JobStarted(f"evaluation matrix of {fmt_count(len(entries), 'checkpoint')}… "
                                          "(it goes on if you leave this screen)"))
        self.app.run_worker(lambda: self._matrix_job(args), thread=True, group="matrix", exit_on_error=False)

    def _matrix_job(self, args: list[str]) -> None:
        """An app-level worker: the job outlives this screen; the result opens here, or is announced."""
        app = self.app
        try:
            result = run_engine_job(args, self.report_progress)
            if not isinstance(result, MatrixResult):
                raise JobError(f"the engine answered {result.kind}, not a matrix")
            done = self.MatrixDone(Path(result.matrix_dir))
        except JobError as exc:
            done = self.MatrixDone(None, str(exc))
        if not (self.is_attached and self.post_message(done)):  # the screen has gone: the app says it
            if done.folder is None:
                app.call_from_thread(app.notify, f"evaluation matrix failed: {printable(done.error)}",
                                     severity="error", markup=False)
            else:
                app.call_from_thread(app.notify, f"evaluation matrix ready: {printable(done.folder)} "
                                     "(checkpoints screen, l)", timeout=10, markup=False)

    @on(MatrixDone)
    def _matrix_done(self, message: MatrixDone) -> None:
        if message.folder is None:
            self._job_done(self.JobDone(plain_text(f"matrix failed: {message.error}", "red", multiline=True)))
            return
        self._job_done(self.JobDone(plain_text(f"matrix written: {message.folder}", "green")))
        if self.app.screen is self:
            self.app.push_screen(MatrixScreen(message.folder, self.images))
        else:
            self.notify(f"evaluation matrix ready: {printable(message.folder)} (checkpoints screen, l)", timeout=10,
                        markup=False)

    def action_past_matrices(self) -> None:
        entries = self._matrix_entries()
        if not entries:
            return
        found = list_matrices([e.path.parent.parent for e in entries])
        if not found:
            self.notify("No evaluation matrix of these runs yet (x makes one).", severity="warning")
            return
        self.app.push_screen(MatrixListScreen(found), lambda folder: folder and self.app.push_screen(
            MatrixScreen(folder, self.images)))

    # ------------------------------------------------------------ jobs

    def _usable(self) -> CheckpointEntry | None:
        entry = self.highlighted
        if entry is None:
            self.notify("No checkpoint here.", severity="warning")
        elif entry.problem and entry.model is None:
            self.notify(f"{printable(entry.key)}: {printable(entry.problem)}", severity="error", markup=False)
            return None
        return entry

    def action_evaluate(self) -> None:
        entry = self._usable()
        if entry is not None:
            self.app.push_screen(JobScreen(f"Evaluate {printable(entry.key)} on a labelled split", entry.data_root or "", "val",
                                           None), lambda request: request and self._run_evaluate(entry, request))

    def action_submission(self) -> None:
        entry = self._usable()
        if entry is not None:
            out = default_submission(entry.path, "test")
            self.app.push_screen(JobScreen(f"Predict a split with {printable(entry.key)} and write the submission",
                                           entry.data_root or "", "test", str(out)),
                                 lambda request: request and self._run_predict(entry, request))

    def _run_evaluate(self, entry: CheckpointEntry, request: JobRequest) -> None:
        key = printable(entry.key)

        def finish(result: EvaluationResult) -> JobRunnerScreen.JobDone:
            metrics = result.metrics
            table = Table(title=Text(f"{key} on {request.split}", style="table.title"), title_justify="left",
                          show_edge=False)
            table.add_column("metric")
            table.add_column("value", justify="right")
            for metric, label in METRIC_LABELS.items():
                table.add_row(label, fmt_metric(metrics.get(metric)))
            evaluation = PredictionSource(f"{entry.key} on {request.split}", {0: Path(result.predictions)},
                                          Path(result.images), checkpoint=entry.path)
            note = plain_text(f"metrics: {result.metrics_file}\npress o to open its {metrics.get('count', 0):,} "
                              "predictions", "dim", multiline=True)
            return self.JobDone(Group(table, note), evaluation)

        self.run_job(checkpoint_job_args("evaluate", entry.path, request.data, request.split, request.out),
                     EvaluationResult, f"evaluating {key} on {request.split}…", "evaluation failed", finish)

    def _run_predict(self, entry: CheckpointEntry, request: JobRequest) -> None:
        def finish(result: SubmissionResult) -> JobRunnerScreen.JobDone:
            checked = check_submission(result.submission)
            unreadable = f"\n{result.unreadable} unreadable images got 0.5" if result.unreadable else ""
            return self.JobDone(Text.assemble(("submission written and checked\n", "bold green"),
                                              printable(f"{result.submission}\n{checked}", multiline=True),
                                              (unreadable, "yellow")))

        self.run_job(checkpoint_job_args("predict", entry.path, request.data, request.split, request.out),
                     SubmissionResult, f"predicting {request.split} with {printable(entry.key)}…", "prediction failed",
                     finish)

    @on(JobRunnerScreen.JobDone)
    def _keep_evaluation(self, message: JobRunnerScreen.JobDone) -> None:
        if isinstance(message.kept, PredictionSource):
            self.last_evaluation = message.kept

    def action_open_predictions(self) -> None:
        if self.last_evaluation is None:
            self.notify("Evaluate a checkpoint first (e).", severity="warning")
            return
        self.app.push_screen(PredictionsScreen(self.last_evaluation, self.images))

    # ------------------------------------------------------------ new runs from a checkpoint

    def action_fine_tune(self) -> None:
        entry = self._usable()
        if entry is not None:
            self.app.open_new_run(model=entry.model, img_size=entry.img_size, data_root=entry.data_root,
                                  pretrained=str(entry.path.resolve()), name=f"{entry.run}-ft", stem=entry.stem)

    def action_resume(self) -> None:
        entry = self.highlighted
        if entry is not None:
            self.app.resume_run_named(entry.run)
