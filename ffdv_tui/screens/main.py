"""The workbench: runs on the left, the selected run (progress, curves, metrics, log) on the right.

It owns what is done to runs (pause, stop, checkpoint, resume) and how they are drawn: the
app hands it each update from the watcher (frozen snapshots), and a timer passes the
selected run's snapshot to the widgets a few times a second, so a busy engine never
floods the screen. Widgets hold the snapshot in a reactive and redraw themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from engine.contract.protocol import CheckpointSaved, RunError, RunFinished, RunWarning
from engine.contract.runstore import append_command, new_command_id
from engine.contract.status import LIVE_STATUSES, RunStatus
from engine.contract.text import printable
from ffdv_tui.run_filter import SORTS
from ffdv_tui.run_snapshot import RunSnapshot
from ffdv_tui.runs import Answer, RunsUpdate, ordered
from ffdv_tui.screens.confirm import ConfirmScreen
from ffdv_tui.screens.run_choice import RunChoice
from ffdv_tui.widgets.curves import LossPlot, MetricPlot
from ffdv_tui.widgets.key_bar import KeyBar
from ffdv_tui.widgets.log_tail import LogTail
from ffdv_tui.widgets.metrics_table import MetricsTable
from ffdv_tui.widgets.run_list import RunList, status_text
from ffdv_tui.widgets.run_progress import RunProgress
from ffdv_tui.widgets.steady_header import SteadyHeader

REPAINT_S = 0.25  # header and progress of the selected run
RUNNER_CHECK_S = 2.0  # is a queue runner alive: a file and /proc read in a thread
FULL_REPAINT_S = 1.0  # its curves, table and log: a whole frame's work, once a second is plenty


class MainScreen(RunChoice, Screen):
    BINDINGS = [
        Binding("n", "app.new_run", "New run", tooltip="Start a training run (the form)"),
        Binding("p", "pause_resume", "Pause/Resume", tooltip="Pause the selected run, or resume it"),
        Binding("s", "stop", "Stop", tooltip="Stop the selected run cleanly (it saves a checkpoint first)"),
        Binding("c", "checkpoint", "Checkpoint", tooltip="Save a checkpoint of the selected run now"),
        Binding("r", "resume_run", "Resume run", tooltip="Continue a stopped or crashed run from its newest checkpoint"),
        Binding("v", "app.predictions", "Predictions", tooltip="Per-image predictions of the selected run"),
        Binding("d", "app.dataset", "Dataset", tooltip="Splits, balance, sizes, a health scan, the images"),
        Binding("k", "app.checkpoints", "Checkpoints",
                tooltip="Every checkpoint: evaluate, submission, fine-tune, compare"),
        Binding("u", "app.queue", "Queue",
                tooltip="The run queue: hold, release, cancel, reorder queued runs; start a queue runner"),
        # Comparing runs (docs/compare.md): marking, comparing and filtering rank last in the key bar (it leaves
        # them out first when the terminal is narrow); marking every shown run and sorting are in ? and the palette.
        Binding("space", "mark", "Mark", tooltip="Mark the selected run for a comparison (again: unmark)"),
        Binding("a", "mark_shown", "Mark shown", tooltip="Mark every run the filter shows (again: unmark them)",
                show=False),
        Binding("m", "app.compare", "Compare", tooltip="Compare the marked runs: curves, table, ROC"),
        Binding("slash", "filter", "Filter", tooltip="Filter the runs: a name, a status, auc>0.8, model=resnet*"),
        Binding("o", "sort", "Sort", tooltip="Sort the runs: newest, best AUC, name (in turn)", show=False),
    ]

    class RunnerChecked(Message):
        """Whether a queue runner serves the runs folder now."""

        def __init__(self, alive: bool) -> None:
            super().__init__()
            self.alive = alive

    @dataclass
    class Relaunched(Message):
        """A resumed run's engine could not be started."""

        run: str
        error: str

    def __init__(self, runs_dir: str = "runs", data_hint: str = "") -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.data_hint = data_hint
        self.runs: dict[str, RunSnapshot] = {}
        self.selected: str | None = None
        self.sub_title_text = ""
        self._expected: set[str] = set()  # runs this app started that the watcher may not have seen yet
        self._dirty: set[str] = set()
        self._listed = False
        self._complete = False  # the watcher has read every run folder once
        self._last_full = 0.0
        self._mounted = False  # the watcher's first update can come before the widgets exist
        self.runner_alive = False
        self.marked: set[str] = set()  # runs marked for a comparison
        self.filter_text = ""  # the runs list's filter (ffdv_tui.run_filter)
        self.sort = SORTS[0]

    def compose(self) -> ComposeResult:
        yield SteadyHeader()
        with Horizontal(id="body"):
            yield RunList(id="runs", classes="pane")
            with Vertical(id="run-view"):
                yield Static(id="empty")
                yield RunProgress(id="progress")
                with Horizontal(id="curves"):
                    yield LossPlot(id="loss-plot")
                    yield MetricPlot(id="metric-plot")
                yield MetricsTable(id="metrics", classes="pane")
                yield LogTail(id="log", classes="pane")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#runs", RunList).border_title = "runs"
        self.query_one("#metrics", MetricsTable).border_title = "validations"
        self.query_one("#log", LogTail).border_title = "engine.log"
        self.set_interval(REPAINT_S, self.repaint)
        self.set_interval(RUNNER_CHECK_S, self._check_runner)
        self._mounted = True
        self.repaint()  # what the app read before the widgets existed goes into the first frame, not the next

    def on_screen_resume(self) -> None:
        self.app.sub_title = self.sub_title_text

    @property
    def listed(self) -> bool:
        """Every run folder has been read once and the run list is on screen."""
        return self._listed

    @property
    def painted(self) -> bool:
        """Every change the watcher reported so far is on screen (tests wait for this, not for time)."""
        return self._listed and not self._dirty

    @property
    def selected_run(self) -> RunSnapshot | None:
        return self.runs.get(self.selected or "")

    # ------------------------------------------------------------ what the watcher saw

    def take(self, update: RunsUpdate) -> None:
        """Keep the newest snapshots; draw them at the next repaint; say what the engine answered."""
        self.runs = dict(update.runs)
        self._dirty |= update.changed
        self._complete = update.complete
        for answer in update.answers:
            self._announce(answer)
        if not self._listed and self._mounted:
            self.repaint()  # the first runs read go on screen at once, not at the next repaint

    def repaint(self) -> None:
        """Pass what changed since the last repaint to the widgets (a few times a second at most)."""
        if not self._dirty and self._listed:
            return
        dirty, self._dirty = self._dirty, set()
        runs = self.shown(ordered(self.runs))
        if self.selected is None and runs:
            self.selected = runs[0].name
            self.app.follow_closely(self.selected)
            dirty.add(self.selected)
        elif self.selected is not None and self.selected not in self.runs:
            if self.selected in self._expected:
                dirty.add(self.selected)  # a run we just started: keep it selected until it shows up
            else:
                self.selected = runs[0].name if runs else None
                self.app.follow_closely(self.selected)
        run_list = self.query_one(RunList)
        run_list.runs = tuple(runs)
        run_list.selected = self.selected
        self._show_queue()
        if self.filter_text:
            self.show_list_title(len(runs))  # runs come and go while a filter is on: its count follows
        if not runs and not self._complete:
            self.query_one("#empty", Static).update(Text(f"Reading the runs in {printable(self.runs_dir)}/ …"))
        elif not runs:
            self.query_one("#empty", Static).update(
                Text.assemble(f"No runs in {printable(self.runs_dir)}/ yet.\n\nPress ", ("n", "bold"),
                              f" to start one{printable(self.data_hint)}.\n"
                              "Runs started with `ffdv train` from another terminal appear here too."))
        self.set_class(not runs, "no-runs")
        if self.selected in dirty or not self._listed:
            now = time.monotonic()
            full = now - self._last_full >= FULL_REPAINT_S or not self._listed
            self._show_selected(full)
            if not full:
                self._dirty.add(self.selected)  # the rest follows with the next full repaint
        self._listed = self._complete

    def _show_selected(self, full: bool = True) -> None:
        """Header and progress always; curves, table and log only when ``full`` (they cost a frame)."""
        run = self.selected_run
        if run is None:
            self.sub_title_text = ""
        else:
            device = f" · {printable(run.device)}" if run.device else ""
            ranks = f" · {run.world_size} processes" if run.world_size > 1 else ""
            self.sub_title_text = f"{printable(run.name)} · {status_text(run.status).plain}{device}{ranks}"
        if self.app.screen is self:  # another screen on top names itself in the header
            self.app.sub_title = self.sub_title_text
            self.query_one(SteadyHeader).show_title()
        with self.app.batch_update():
            self.query_one(RunProgress).run = run
            if full:
                self._last_full = time.monotonic()
                self.query_one(LossPlot).run = run
                self.query_one(MetricPlot).run = run
                self.query_one(MetricsTable).run = run
                self.query_one(LogTail).run = run

    # ------------------------------------------------------------ the queue

    @work(thread=True, exclusive=True, group="runner-check")
    def _check_runner(self) -> None:
        from engine.contract.queue_runner import runner_alive

        self.post_message(self.RunnerChecked(runner_alive(self.runs_dir) is not None))

    @on(RunnerChecked)
    def _runner_checked(self, message: RunnerChecked) -> None:
        if message.alive != self.runner_alive:
            self.runner_alive = message.alive
            self._show_queue()

    def _show_queue(self) -> None:
        """Under the run list: how many runs wait and whether a queue runner serves them (nothing without a queue)."""
        waiting = sum(1 for run in self.runs.values() if run.status == RunStatus.QUEUED)
        parts = ([f"{waiting} queued"] if waiting else []) + (["runner on"] if self.runner_alive else
                                                              ["no runner: u"] if waiting else [])
        text, run_list = " · ".join(parts), self.query_one(RunList)
        if (run_list.border_subtitle or "") != text:  # assigning it redraws the list, even with the same text
            run_list.border_subtitle = text

    # ------------------------------------------------------------ choosing a run

    @on(RunList.RunSelected)
    def _run_selected(self, message: RunList.RunSelected) -> None:
        if message.name != self.selected:
            self.select_run(message.name)

    def select_run(self, name: str, expected: bool = False) -> None:
        """Show ``name`` in full at once (not at the next throttled repaint); ``expected``: just started here."""
        if expected:
            self._expected.add(name)
        self.selected = name
        self.app.follow_closely(name)
        self.query_one(RunList).selected = name
        if self.selected_run is None:
            self._dirty.add(name)
            return
        self._show_selected()

    # ------------------------------------------------------------ commands to the engine

    def _announce(self, answer: Answer) -> None:
        event, run = answer.event, printable(answer.run)
        if isinstance(event, (RunError, RunWarning)):
            self.notify(f"{run}: {printable(event.message)}", severity="warning", markup=False)
        elif isinstance(event, RunFinished):
            self.notify(f"{run}: run {printable(event.status)}", markup=False)
        elif isinstance(event, CheckpointSaved):
            self.notify(f"{run}: checkpoint saved ({printable(event.path)})", markup=False)
        else:  # paused, resumed: where the run stands
            epoch, step = getattr(event, "epoch", None), getattr(event, "step", None)
            epoch = epoch + 1 if isinstance(epoch, int) else "?"
            self.notify(f"{run}: {printable(event.kind)} at epoch {epoch}, step {printable(step)}", markup=False)

    def _send(self, command: str, allowed: tuple[str, ...]) -> None:
        run = self.selected_run
        if run is None:
            self.notify("No run selected.", severity="warning")
            return
        name = printable(run.name)
        if run.status not in allowed:
            self.notify(f"{name} is {run.status}: nothing to {command.replace('_now', '')}.", severity="warning",
                        markup=False)
            return
        command_id = new_command_id()
        self.app.expect_answer(run.name, command_id)
        append_command(run.paths, command, command_id=command_id)
        self.notify(f"{name}: {command.replace('_now', '')} sent; waiting for the engine…", timeout=3, markup=False)

    def action_pause_resume(self) -> None:
        run = self.selected_run
        if run is not None and run.status == RunStatus.PAUSED:
            self._send("resume", (RunStatus.PAUSED,))
        else:
            self._send("pause", (RunStatus.RUNNING,))

    def action_checkpoint(self) -> None:
        self._send("checkpoint_now", (RunStatus.RUNNING, RunStatus.PAUSED))

    def action_stop(self) -> None:
        run = self.selected_run
        if run is None or not run.is_live:
            self._send("stop", tuple(LIVE_STATUSES))
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._send("stop", tuple(LIVE_STATUSES))

        self.app.push_screen(ConfirmScreen(f"Stop {printable(run.name)}? It finishes its step and saves a checkpoint; "
                                           "r resumes it later.", yes="Stop", no="Keep running"), confirmed)

    def action_resume_run(self) -> None:
        run = self.selected_run
        if run is None:
            self.notify("No run selected.", severity="warning")
            return
        name = printable(run.name)
        if run.is_live:
            if run.status == RunStatus.PAUSED:
                self._send("resume", (RunStatus.PAUSED,))
            else:
                self.notify(f"{name} is {run.status}.", severity="warning", markup=False)
            return
        def confirmed(yes: bool | None) -> None:  # r means something else on other screens: starting an engine asks
            if yes:
                self.notify(f"{name}: resuming…", markup=False)
                self._relaunch(run)

        done = " It finished: resuming trains it again only if its config asks for more epochs." \
            if run.status == RunStatus.FINISHED else ""
        self.app.push_screen(ConfirmScreen(f"Resume {name} from its newest checkpoint? This starts its engine.{done}",
                                           yes="Resume", no="Cancel"), confirmed)

    @work(thread=True, group="launch")
    def _relaunch(self, run: RunSnapshot) -> None:
        from engine.contract.runstart import nothing_to_resume, resume_run  # reads label files with pandas

        try:
            launched = resume_run(run.paths)
        except Exception as exc:
            self.post_message(self.Relaunched(run.name, str(exc)))
            return
        if not launched.from_checkpoint:
            self.app.call_from_thread(self.notify, nothing_to_resume(launched.paths), severity="warning", markup=False)

    @on(Relaunched)
    def _relaunch_failed(self, message: Relaunched) -> None:
        self.notify(f"{printable(message.run)}: could not resume: {printable(message.error)}", severity="error",
                    markup=False)
