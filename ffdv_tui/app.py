"""ffdv-tui: start, watch, steer and judge training runs from one keyboard.

The app only reads and writes run folders (engine.contract.runstore); engines are their own
processes (engine.contract.launch), so quitting the app, or losing the SSH connection, leaves
them running. One thread worker follows every run (ffdv_tui.runs.RunsModel) and
posts what changed; a timer repaints the changed parts a few times a second, so a
busy engine never floods the screen.
"""

from __future__ import annotations

import gc
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from engine.contract.config import Config, load_config, resolve, save_config
from engine.contract.launch import launch_run
from engine.contract.runstore import append_command, create_run_dir, new_command_id
from engine.contract.status import LIVE_STATUSES, RunStatus
from ffdv_tui.model_names import model_names
from ffdv_tui.runs import Answer, RunEntry, RunsModel
from ffdv_tui.screens.confirm import ConfirmScreen
from ffdv_tui.screens.help import HelpScreen
from ffdv_tui.screens.main import MainScreen
from ffdv_tui.screens.new_run import NewRunScreen
from ffdv_tui.widgets.run_list import RunList

REPAINT_S = 0.25  # header and progress of the selected run
FULL_REPAINT_S = 1.0  # its curves, table and log: a whole frame's work, once a second is plenty
WATCH_S = 0.1


def count_gpus() -> int:
    """NVIDIA GPUs visible here, without torch: nvidia-smi's list (0 without a driver)."""
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def quiet_garbage_collector() -> None:
    """Keep Python's full garbage collections out of key presses.

    Replayed run logs and Textual's caches make a large heap; a full collection walked it
    in 35-65 ms, several times a minute, and every key press that met one waited for it
    (most of the p95 of bench/bench_tui.py). What exists after the first frame is frozen
    (never walked again) and full collections come ten times less often.
    """
    gc.freeze()
    gen0, gen1, _ = gc.get_threshold()
    gc.set_threshold(gen0, gen1, 100)


class FfdvApp(App[str]):
    CSS_PATH = "app.tcss"
    TITLE = "ffdv-tui"
    BINDINGS = [
        Binding("question_mark", "keys", "Keys"),
        Binding("q", "quit_app", "Quit"),
    ]

    class RunsChanged(Message):
        def __init__(self, names: set[str], answers: list[Answer]) -> None:
            super().__init__()
            self.names = names
            self.answers = answers

    def __init__(self, runs_dir: Path | str = "runs", data_dir: Path | str | None = None, images: str = "halfcell",
                 watch: bool = True, model_names: Callable[[], list[str]] = model_names,
                 quiet_gc: bool = False) -> None:
        super().__init__()
        self.quiet_gc = quiet_gc  # the command sets it; tests leave the process's collector alone
        self.list_models = model_names
        self.runs_dir = Path(runs_dir)
        self.data_dir = Path(data_dir) if data_dir else None
        self.images = images
        self.model = RunsModel(self.runs_dir)
        self.watch_runs = watch
        self._dirty: set[str] = set()
        self._listed = False
        self._expected: set[str] = set()  # runs this app started that the watcher may not have seen yet
        self._last_full = 0.0
        self._stop_watching = threading.Event()
        self.gpus = 0

    def get_default_screen(self) -> Screen:
        return MainScreen()

    def on_mount(self) -> None:
        self.model.poll()  # the first frame already lists the runs
        self._dirty = set(self.model.runs)
        self.call_after_refresh(self._repaint)
        if self.quiet_gc:
            self.call_after_refresh(quiet_garbage_collector)
        if self.watch_runs:
            self._watch()
        self.set_interval(REPAINT_S, self._repaint)
        self._count_gpus()

    # ------------------------------------------------------------ following the runs

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def _watch(self) -> None:
        while not self._stop_watching.wait(WATCH_S):
            changed, answers = self.model.poll()
            if changed or answers:
                self.post_message(self.RunsChanged(changed, answers))

    @work(thread=True, group="gpus")
    def _count_gpus(self) -> None:
        self.gpus = count_gpus()

    def on_ffdv_app_runs_changed(self, message: RunsChanged) -> None:
        self._dirty |= message.names
        for answer in message.answers:
            self._announce(answer)

    def _repaint(self) -> None:
        """Apply what changed since the last repaint (a few times a second at most)."""
        if not self._dirty and self._listed:
            return
        dirty, self._dirty = self._dirty, set()
        screen = self._main()
        if screen is None:
            return
        entries = self.model.ordered()
        if self.model.selected is None and entries:
            self.model.select(entries[0].name)
            dirty.add(entries[0].name)
        elif self.model.selected is not None and self.model.selected not in self.model.runs:
            if self.model.selected in self._expected:
                dirty.add(self.model.selected)  # a run we just started: keep it selected until it shows up
            else:
                self.model.select(entries[0].name if entries else None)
        hint = f" on {self.data_dir}" if self.data_dir else ""
        now = time.monotonic()
        with self.model.lock:
            screen.show_runs(entries, self.model.selected, str(self.runs_dir), hint)
            if self.model.selected in dirty or not self._listed:
                full = now - self._last_full >= FULL_REPAINT_S or not self._listed
                screen.show_run(self.selected_entry(), full=full)
                if full:
                    self._last_full = now
                else:
                    self._dirty.add(self.model.selected)  # the rest follows with the next full repaint
        self._listed = True

    def _main(self) -> MainScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    def selected_entry(self) -> RunEntry | None:
        return self.model.runs.get(self.model.selected or "")

    def on_run_list_run_selected(self, message: RunList.RunSelected) -> None:
        if message.name != self.model.selected:
            self.model.select(message.name)
            self._show_selected()

    def select_run(self, name: str) -> None:
        self.model.select(name)
        if self._main() is not None:
            self.query_one(RunList).highlight_run(name)
        self._show_selected()

    def _show_selected(self) -> None:
        """A run chosen by the user is drawn in full at once, not at the next throttled repaint."""
        screen = self._main()
        if screen is None:
            return
        if self.selected_entry() is None:
            self._dirty.add(self.model.selected or "")
            return
        with self.model.lock:
            screen.show_run(self.selected_entry())
        self._last_full = time.monotonic()

    # ------------------------------------------------------------ commands to the engine

    def _announce(self, answer: Answer) -> None:
        kind = answer.event.get("kind")
        if kind in ("error", "warning"):
            self.notify(f"{answer.run}: {answer.event.get('message')}", severity="warning")
        elif kind == "run_finished":
            self.notify(f"{answer.run}: run {answer.event.get('status')}")
        elif kind == "checkpoint_saved":
            self.notify(f"{answer.run}: checkpoint saved ({answer.event.get('path')})")
        else:
            self.notify(f"{answer.run}: {kind} at epoch {int(answer.event.get('epoch', 0)) + 1}, "
                        f"step {answer.event.get('step')}")

    def _send(self, command: str, allowed: tuple[str, ...]) -> None:
        entry = self.selected_entry()
        if entry is None:
            self.notify("No run selected.", severity="warning")
            return
        if entry.status not in allowed:
            self.notify(f"{entry.name} is {entry.status}: nothing to {command.replace('_now', '')}.",
                        severity="warning")
            return
        command_id = new_command_id()
        self.model.expect_answer(entry.name, command_id)
        append_command(entry.paths, command, command_id=command_id)
        self.notify(f"{entry.name}: {command.replace('_now', '')} sent; waiting for the engine…", timeout=3)

    def action_pause_resume(self) -> None:
        entry = self.selected_entry()
        if entry is not None and entry.status == RunStatus.PAUSED:
            self._send("resume", (RunStatus.PAUSED,))
        else:
            self._send("pause", (RunStatus.RUNNING,))

    def action_checkpoint(self) -> None:
        self._send("checkpoint_now", (RunStatus.RUNNING, RunStatus.PAUSED))

    def action_stop(self) -> None:
        entry = self.selected_entry()
        if entry is None or not entry.is_live:
            self._send("stop", tuple(LIVE_STATUSES))
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._send("stop", tuple(LIVE_STATUSES))

        self.push_screen(ConfirmScreen(f"Stop {entry.name}? It finishes its step and saves a checkpoint; "
                                       "r resumes it later.", yes="Stop", no="Keep running"), confirmed)

    def action_resume_run(self) -> None:
        entry = self.selected_entry()
        if entry is None:
            self.notify("No run selected.", severity="warning")
            return
        if entry.is_live:
            if entry.status == RunStatus.PAUSED:
                self._send("resume", (RunStatus.PAUSED,))
            else:
                self.notify(f"{entry.name} is {entry.status}.", severity="warning")
            return
        if not any(entry.paths.checkpoints.glob("*.state.pt")):
            self.notify(f"{entry.name} has no checkpoint to resume from.", severity="warning")
            return
        self.notify(f"{entry.name}: resuming from its newest checkpoint…")
        self._relaunch(entry)

    @work(thread=True, group="launch")
    def _relaunch(self, entry: RunEntry) -> None:
        try:
            launch_run(entry.paths, resume=True, dist=load_config(entry.paths.config).dist)
        except Exception as exc:
            self.call_from_thread(self.notify, f"{entry.name}: could not resume: {exc}", severity="error")

    # ------------------------------------------------------------ other screens
    # Imported when first opened: they bring pandas and textual-image, which the first frame does not need.

    def action_predictions(self) -> None:
        from ffdv_tui.screens.predictions import PredictionsScreen, run_source

        entry = self.selected_entry()
        if entry is None:
            self.notify("No run selected.", severity="warning")
            return
        root = (entry.state.config.get("data") or {}).get("root") or load_config(entry.paths.config).data.root
        self.push_screen(PredictionsScreen(run_source(entry.paths.root, root), self.images))

    # ------------------------------------------------------------ new run

    def form_defaults(self) -> Config:
        config = load_config()
        config.data.root = str(self.data_dir) if self.data_dir else ""
        return config

    def open_new_run(self, model: str | None = None, img_size: int | None = None, data_root: str | None = None,
                     pretrained: str = "", name: str = "") -> None:
        """The new-run form, prefilled (fine-tuning from a checkpoint, for one)."""
        config = self.form_defaults()
        config.model.name = model or config.model.name
        config.data.img_size = img_size or config.data.img_size
        config.data.root = data_root or config.data.root
        config.model.pretrained = pretrained
        config.run.name = name
        self._push_new_run(config)

    def resume_run_named(self, name: str) -> None:
        if name in self.model.runs:
            self.select_run(name)
            self.action_resume_run()

    def start_run(self, config: Config, gpus: int = 1) -> str:
        """Create the run folder and launch its engine (called from the form's worker thread)."""
        config.dist.nproc_per_node = gpus
        config = resolve(config)
        paths = create_run_dir(self.runs_dir, config.run.name or None, default_stem=config.model.name)
        config.run.name = paths.root.name
        config.run.runs = str(self.runs_dir)
        save_config(paths, config)
        launch_run(paths, dist=config.dist)
        return paths.root.name

    def action_new_run(self) -> None:
        self._push_new_run(self.form_defaults())

    def _push_new_run(self, defaults: Config) -> None:
        def started(name: str | None) -> None:
            if name:
                self.notify(f"{name}: engine started")
                self._expected.add(name)
                while not isinstance(self.screen, MainScreen) and len(self.screen_stack) > 1:
                    self.pop_screen()
                self.select_run(name)

        self.push_screen(NewRunScreen(defaults, self.runs_dir, self.list_models, self.start_run, self.gpus), started)

    def action_dataset(self) -> None:
        """The selected run's dataset, or the one new runs use."""
        from ffdv_tui.screens.dataset import DatasetScreen

        entry = self.selected_entry()
        root = ((entry.state.config.get("data") or {}).get("root") if entry is not None else None) or self.data_dir
        self.push_screen(DatasetScreen(Path(root) if root else None, self.images))

    def action_checkpoints(self) -> None:
        from ffdv_tui.screens.checkpoints import CheckpointsScreen

        self.push_screen(CheckpointsScreen(self.runs_dir, self.list_models, self.images))

    # ------------------------------------------------------------ keys, palette, quitting

    def action_keys(self) -> None:
        self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield SystemCommand("New run", "Start a training run (the form)", self.action_new_run)
        yield SystemCommand("Pause or resume", "Pause the selected run, or resume it", self.action_pause_resume)
        yield SystemCommand("Stop run", "Stop the selected run cleanly (checkpoint first)", self.action_stop)
        yield SystemCommand("Checkpoint now", "Save a checkpoint of the selected run", self.action_checkpoint)
        yield SystemCommand("Resume run", "Continue a stopped or crashed run", self.action_resume_run)
        yield SystemCommand("Predictions", "Per-image predictions of the selected run", self.action_predictions)
        yield SystemCommand("Checkpoints", "Every checkpoint: evaluate, submission, fine-tune, compare",
                            self.action_checkpoints)
        yield SystemCommand("Dataset", "Splits, balance, sizes, a health scan, the images", self.action_dataset)
        yield SystemCommand("Keys", "Every key of the app", self.action_keys)
        yield SystemCommand("Quit", "Quit; engines keep running", self.action_quit_app)
        for entry in self.model.ordered():
            yield SystemCommand(f"Show run {entry.name}", f"{entry.status}", lambda n=entry.name: self.select_run(n))
        yield from super().get_system_commands(screen)

    def action_quit_app(self) -> None:
        live = [e.name for e in self.model.live()]
        if not live:
            self._leave([])
            return
        names = ", ".join(live[:5]) + (" …" if len(live) > 5 else "")
        question = (f"{len(live)} run{'s are' if len(live) > 1 else ' is'} still training ({names}). "
                    "The engines keep running after you quit; open ffdv-tui again, or `ffdv watch`, to follow them.")
        self.push_screen(ConfirmScreen(question, yes="Quit", no="Stay"),
                         lambda yes: self._leave(live) if yes else None)

    def _leave(self, live: list[str]) -> None:
        self._stop_watching.set()
        message = ""
        if live:
            message = (f"Left running: {', '.join(live)}. Follow with `ffdv watch NAME --runs {self.runs_dir}` "
                       "or open ffdv-tui again.")
        self.exit(message)

    def on_unmount(self) -> None:
        self._stop_watching.set()
