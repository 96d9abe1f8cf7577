"""The workbench: runs on the left, the selected run (progress, curves, metrics, log) on the right."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from ffdv_tui.runs import RunEntry
from ffdv_tui.widgets.curves import LossPlot, MetricPlot
from ffdv_tui.widgets.log_tail import LogTail
from ffdv_tui.widgets.metrics_table import MetricsTable
from ffdv_tui.widgets.run_list import RunList, status_text
from ffdv_tui.widgets.run_progress import RunProgress


class MainScreen(Screen):
    BINDINGS = [
        Binding("n", "app.new_run", "New run"),
        Binding("p", "app.pause_resume", "Pause/Resume"),
        Binding("s", "app.stop", "Stop"),
        Binding("c", "app.checkpoint", "Checkpoint"),
        Binding("r", "app.resume_run", "Resume run"),
        Binding("v", "app.predictions", "Predictions"),
        Binding("d", "app.dataset", "Dataset"),
        Binding("k", "app.checkpoints", "Checkpoints"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            yield RunList(id="runs")
            with Vertical(id="run-view"):
                yield Static(id="empty")
                yield RunProgress(id="progress")
                with Horizontal(id="curves"):
                    yield LossPlot(id="loss-plot")
                    yield MetricPlot(id="metric-plot")
                yield MetricsTable(id="metrics")
                yield LogTail(id="log")
        yield Footer()

    sub_title_text = ""

    def on_screen_resume(self) -> None:
        self.app.sub_title = self.sub_title_text

    def on_mount(self) -> None:
        self.query_one("#runs", RunList).border_title = "runs"
        self.query_one("#metrics", MetricsTable).border_title = "validations"
        self.query_one("#log", LogTail).border_title = "engine.log"

    def show_runs(self, entries: list[RunEntry], selected: str | None, runs_dir: str, data_hint: str) -> None:
        self.query_one("#runs", RunList).show_runs(entries, selected)
        empty = self.query_one("#empty", Static)
        if not entries:
            empty.update(f"No runs in {runs_dir}/ yet.\n\nPress [b]n[/b] to start one{data_hint}.\n"
                         "Runs started with `ffdv train` from another terminal appear here too.")
        self.set_class(not entries, "no-runs")

    def show_run(self, entry: RunEntry | None, full: bool = True) -> None:
        """Header and progress always; curves, table and log only when ``full`` (they cost a frame)."""
        if entry is None:
            self.sub_title_text = ""
        else:
            device = f" · {entry.state.device}" if entry.state.device else ""
            ranks = f" · {entry.state.world_size} processes" if entry.state.world_size > 1 else ""
            self.sub_title_text = f"{entry.name} · {status_text(entry.status).plain}{device}{ranks}"
        if self.app.screen is self:  # another screen on top names itself in the header
            self.app.sub_title = self.sub_title_text
        self.query_one(RunProgress).show(entry)
        if not full:
            return
        self.query_one(LossPlot).show(entry)
        self.query_one(MetricPlot).show(entry)
        self.query_one(MetricsTable).show(entry)
        self.query_one(LogTail).show(entry)
