"""The headless display of ``ffdv``: a rich progress bar and metric tables, driven by run events.

It is an event listener like any viewer, so it shows the same run whether the
engine runs in this process or another. On a terminal it draws a live progress
bar; elsewhere (a log file, CI) it prints a plain line every few seconds.

Every text an event carries (names, paths, messages) is data: it is shown through
``plain_text`` (escaped, cut) inside rich ``Text`` objects, never in a markup string,
so a ``[/]`` in a name cannot crash the console and a ``[link=...]`` is never a link.
"""

from __future__ import annotations

import time
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from engine.contract.fmt import fmt_count, fmt_duration, fmt_metric
from engine.contract.protocol import (
    METRIC_LABELS,
    CheckpointSaved,
    EpochEnded,
    Event,
    Paused,
    PredictionsWritten,
    Resumed,
    RunError,
    RunFinished,
    RunStarted,
    RunWarning,
    Step,
    Validated,
)
from engine.contract.runstate import RunState
from engine.contract.status import RunOutcome
from engine.contract.text import plain_text, printable

PLAIN_LINE_INTERVAL_S = 10.0


def metrics_table(rows: list[tuple[str, dict[str, Any], bool]], title: str = "") -> Table:
    """One row per validation (label, metrics, is_best), AUC first; the best row is marked."""
    table = Table(title=title or None, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  header_style="bold", padding=(0, 1), pad_edge=False, collapse_padding=True)
    table.add_column("", justify="left", no_wrap=True)
    for label in METRIC_LABELS.values():
        table.add_column(label, justify="right", no_wrap=True)
    for label, metrics, is_best in rows:
        cells = [Text(fmt_metric(metrics.get(key))) for key in METRIC_LABELS]  # a metric from a file may be any text
        table.add_row(f"{label} ★" if is_best else label, *cells, style="bold green" if is_best else None)
    return table


def metric_list_table(metrics: dict[str, Any]) -> Table:
    """One metric a line: for a single evaluation, readable in any width."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label in METRIC_LABELS.items():
        table.add_row(label, Text(fmt_metric(metrics.get(key))))
    return table


def source_table(rows: list[tuple[str, dict[str, dict], dict]], metrics: tuple[str, ...] = ("auc", "accuracy")) -> Table:
    """A row per model, a column group per source and one for the mean over sources (as benchmarks report)."""
    sources = sorted({s for _, by_source, _ in rows for s in by_source})
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", title="per source", title_justify="left")
    table.add_column("model")
    for group in (*sources, "mean"):
        for key in metrics:
            table.add_column(Text(f"{printable(group, 24)}\n{METRIC_LABELS.get(key, key)}"), justify="right")
    for model, by_source, mean in rows:
        cells = [Text(fmt_metric(by_source.get(s, {}).get(k))) for s in sources for k in metrics]
        table.add_row(Text(printable(model, 40)), *cells, *(Text(fmt_metric(mean.get(k))) for k in metrics))
    return table


def confusion_table(confusion: list[list[int]]) -> Table:
    (tn, fp), (fn, tp) = confusion
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", title="confusion at 0.5",
                  title_justify="left")
    table.add_column("true \\ predicted")
    table.add_column("real", justify="right")
    table.add_column("fake", justify="right")
    table.add_row("real", str(tn), str(fp))
    table.add_row("fake", str(fn), str(tp))
    return table


class ConsoleView:
    """Renders a run's events on a rich console."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console()
        self.live = self.console.is_terminal
        self.progress: Progress | None = None
        self.task = None
        self.state = RunState()  # the same fold the app shows; the handlers below only draw
        self._last_plain = 0.0
        self._epoch_shown = -1

    def __call__(self, event: Event) -> None:
        self.state.apply([event])
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)

    def print(self, *parts: str | tuple[str, str] | Text, style: str = "") -> None:
        """One line from parts that are never markup: our words (str), (text, style) pairs, or Text."""
        line = Text.assemble(*parts, style=style)
        (self.progress.console if self.progress else self.console).print(line)

    # ------------------------------------------------------------ events

    def _on_run_started(self, e: RunStarted) -> None:
        self.print(
            plain_text(e.run_id, "bold"), ": ", plain_text(e.model), " on ", plain_text(e.device),
            f" · {e.num_train} train / {e.num_val} val images · {fmt_count(e.epochs, 'epoch')}"
            f" × {fmt_count(e.steps_per_epoch, 'step')}"
            + (f" · {e.world_size} processes" if e.world_size > 1 else "")
        )
        if self.live and self.progress is None:
            self.progress = Progress(
                TextColumn("[bold]epoch {task.fields[epoch]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[speed]} img/s"),
                TextColumn("lr {task.fields[lr]}"),
                TimeElapsedColumn(),
                TextColumn("ETA {task.fields[eta]}"),
                console=self.console,
                transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=e.steps_per_epoch, epoch="-", loss="-", speed="-",
                                               lr="-", eta="-")

    def _on_step(self, e: Step) -> None:
        total_epochs = self.state.epochs or "?"
        eta = fmt_duration(self.state.eta_seconds())
        if self.progress is not None:
            if e.epoch != self._epoch_shown:
                self._epoch_shown = e.epoch
                self.progress.reset(self.task, total=e.steps_per_epoch)
            self.progress.update(self.task, completed=e.epoch_step, epoch=f"{e.epoch + 1}/{total_epochs}",
                                 loss=f"{e.loss:.4f}", speed=f"{e.images_per_sec:.0f}", lr=f"{e.lr:.2e}", eta=eta)
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_LINE_INTERVAL_S or e.epoch_step == e.steps_per_epoch:
            self._last_plain = now
            self.print(f"epoch {e.epoch + 1}/{total_epochs} step {e.epoch_step}/{e.steps_per_epoch} "
                       f"loss {e.loss:.4f} {e.images_per_sec:.0f} img/s lr {e.lr:.2e} ETA {eta}")

    def _on_epoch_ended(self, e: EpochEnded) -> None:
        self.print(f"epoch {e.epoch + 1} done in {fmt_duration(e.duration_s)}: train loss {e.train_loss:.4f}, "
                   f"{e.images_per_sec:.0f} img/s")

    def _on_validated(self, e: Validated) -> None:
        rows = [(f"ep {epoch}", v.metrics, epoch == self.state.best_epoch)
                for epoch, v in list(self.state.validations.items())[-12:]]
        table = metrics_table(rows, title=f"validation ({e.num_images} images"
                              + (", EMA weights)" if e.weights == "ema" else ")"))
        (self.progress.console if self.progress else self.console).print(table)

    def _on_predictions_written(self, e: PredictionsWritten) -> None:
        pass  # named in the final summary; one line per epoch would drown the tables

    def _on_checkpoint_saved(self, e: CheckpointSaved) -> None:
        if e.reason != "epoch":
            self.print("checkpoint saved (", plain_text(e.reason), "): ", plain_text(e.path), style="dim")

    def _on_paused(self, e: Paused) -> None:
        self.print(f"paused at step {e.step}", style="yellow")

    def _on_resumed(self, e: Resumed) -> None:
        where = (" from ", plain_text(e.checkpoint)) if e.checkpoint else ()
        self.print(f"resumed at epoch {e.epoch + 1}, step {e.step}", *where, style="green")

    def _on_warning(self, e: RunWarning) -> None:
        self.print(("warning: ", "yellow"), plain_text(e.message))

    def _on_error(self, e: RunError) -> None:
        self.print(("error: ", "red"), plain_text(e.message))

    def _on_run_finished(self, e: RunFinished) -> None:
        self.close()
        colour = {RunOutcome.COMPLETED: "green", RunOutcome.STOPPED: "yellow"}.get(e.status, "red")
        best = (("best ", plain_text(e.best_metric), f" {fmt_metric(e.best_value)} at epoch {e.best_epoch}")
                if e.best_value is not None else ("no validation yet",))
        bad = f" · {e.bad_images} unreadable images skipped" if e.bad_images else ""
        self.print(Text.assemble("run ", plain_text(e.status), style=f"bold {colour}"),
                   f" after {fmt_count(e.epochs_completed, 'epoch')} in {fmt_duration(e.duration_s)} · ", *best, bad)
        if e.message and e.status != RunOutcome.COMPLETED:
            self.print(plain_text(e.message, multiline=True))

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
