"""ffdv-tui: start, watch, steer and judge training runs from one keyboard.

The app only reads and writes run folders (engine.contract.runstore); engines are their own
processes (engine.contract.launch), so quitting the app, or losing the SSH connection, leaves
them running. The app starts things up, follows every run from one thread worker
(ffdv_tui.runs.RunsModel posts frozen snapshots), opens the screens and fills the palette;
what is done to a run and how it is drawn belongs to the main screen.
"""

from __future__ import annotations

import gc
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable
from copy import deepcopy
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.reactive import Reactive
from textual.screen import Screen

from engine.contract.config import Config, load_config
from engine.contract.queue import queued_marker
from engine.contract.text import printable
from ffdv_tui.model_names import model_names
from ffdv_tui.run_snapshot import RunSnapshot
from ffdv_tui.runs import RunsModel, RunsUpdate, ordered
from ffdv_tui.screens.confirm import ConfirmScreen
from ffdv_tui.screens.help import HelpScreen, dialog_rows, key_rows
from ffdv_tui.screens.main import MainScreen

WATCH_S = 0.1
KEYS_SCREENS_KEPT = 8
PREPARE_AFTER_S = 0.5  # after the first frame, what the first ``?`` would otherwise make while the user waits
FIRST_READ_BUDGET_S = 0.05  # while run logs are read for the first time, the screen gets what is read every 50 ms


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
    """Keep Python's full garbage collections short: freeze the heap the app has after its first frame.

    Replayed run logs and Textual's caches make a large heap; a full collection walked it
    in 35-65 ms, several times a minute, and every key press that met one waited for it.
    Frozen objects are never walked again (the app freezes once more when the watcher has
    read every run folder: see ``FfdvApp._runs_changed``). What a full collection still
    does is free the reference cycles Textual's rendering leaves behind (about 6,000
    objects a second while keys are pressed): 10-20 ms at Python's own thresholds. Made
    ten times rarer, as an earlier version did, each one freed ten times as much and took
    130-270 ms: the slowest key presses of bench/bench_tui.py while an engine trained.
    """
    gc.freeze()


class FfdvApp(App[str]):
    CSS_PATH = "app.tcss"
    TITLE = "ffdv-tui"
    # The header is the only thing that shows it, and it redraws itself: Textual's default repaints the whole screen,
    # and the sub-title (the run shown) changes with every arrow key in the run list.
    sub_title: Reactive[str] = Reactive("", compute=False, repaint=False)
    BINDINGS = [
        Binding("question_mark", "keys", "Keys", tooltip="Every key of this screen (this list)"),
        Binding("q", "quit_app", "Quit", tooltip="Quit; engines keep running"),
        Binding("ctrl+q", "quit_app", "Quit", show=False, tooltip="Quit; engines keep running"),  # asks too
    ]

    @dataclass
    class RunsChanged(Message):
        """What the watcher thread saw in one poll: frozen snapshots, never touched again."""

        update: RunsUpdate

    def __init__(self, runs_dir: Path | str = "runs", data_dir: Path | str | None = None, images: str = "halfcell",
                 watch: bool = True, model_names: Callable[[], list[str]] = model_names,
                 quiet_gc: bool = False) -> None:
        super().__init__()
        self.quiet_gc = quiet_gc  # the command sets it; tests leave the process's collector alone
        self.list_models = model_names
        self.runs_dir = Path(runs_dir)
        self.data_dir = Path(data_dir) if data_dir else None
        self.images = images
        self.model = RunsModel(self.runs_dir)  # the watcher thread's; the app only sends it hints
        self.runs: dict[str, RunSnapshot] = {}
        self.watch_runs = watch
        self._stop_watching = threading.Event()
        self.gpus = 0
        self._keys_screens: list[str] = []  # names of the installed keys screens, oldest first
        self._freeze_once_read = False  # freeze the heap again when the watcher has read every run folder
        self.kept_settings: dict[tuple[str, str], dict] = {}  # a screen's filter, sort, threshold per (screen, run)
        self.last_started: Config | None = None  # the new-run form's values of the last run started here

    def get_default_screen(self) -> Screen:
        return self.main

    def on_mount(self) -> None:
        # The newest runs before the first frame (reading stops once the budget is spent, so a folder of
        # hundreds of runs never holds it up); the watcher thread reads the rest and shows them as they come.
        update = self.model.poll(budget=FIRST_READ_BUDGET_S if self.watch_runs else None)
        if update is not None:
            self._take(update)
        self.call_after_refresh(self._after_first_frame)

    def _after_first_frame(self) -> None:
        """What the first frame does not need: the watcher (it reads the other runs), the GPU count, the collector.

        Started before the first frame, the watcher's thread read the other run logs while the
        first frame was composed and drawn, and the two shared one interpreter lock.
        """
        if self.watch_runs:
            self._watch()
        self.main.repaint()
        if self.quiet_gc:
            quiet_garbage_collector()
            self._freeze_once_read = not self.main.listed
        self._count_gpus()
        self.set_timer(PREPARE_AFTER_S, dialog_rows)

    @cached_property
    def main(self) -> MainScreen:
        """The workbench, at the bottom of the screen stack for the app's whole life."""
        return MainScreen(str(self.runs_dir), f" on {self.data_dir}" if self.data_dir else "")

    # ------------------------------------------------------------ following the runs

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def _watch(self) -> None:
        while True:
            update = self.model.poll(budget=FIRST_READ_BUDGET_S)
            if update is not None:
                self.post_message(self.RunsChanged(update))
            if self._stop_watching.wait(0 if self.model.behind else WATCH_S):
                return

    @work(thread=True, group="gpus")
    def _count_gpus(self) -> None:
        self.gpus = count_gpus()

    @on(RunsChanged)
    def _runs_changed(self, message: RunsChanged) -> None:
        if self.main.is_attached:  # not while the app is closing
            self._take(message.update)
        if self._freeze_once_read and message.update.complete:
            # The runs read after the first frame (200 of them, say) were young objects that every full
            # collection walked: 130-270 ms, the slowest key presses of bench/bench_tui.py while training.
            self._freeze_once_read = False
            gc.freeze()

    def _take(self, update: RunsUpdate) -> None:
        self.runs = dict(update.runs)
        self.main.take(update)

    def follow_closely(self, name: str | None) -> None:
        """The watcher reads this run every poll, its log too (the selected one)."""
        self.model.select(name)

    def expect_answer(self, run: str, command_id: str) -> None:
        """The watcher hands back the engine's event that answers this command."""
        self.model.expect_answer(run, command_id)

    @property
    def selected_run(self) -> RunSnapshot | None:
        return self.main.selected_run

    def select_run(self, name: str) -> None:
        self.main.select_run(name)

    # ------------------------------------------------------------ other screens
    # Imported when first opened: they bring pandas and textual-image, which the first frame does not need
    # (the dialogs' keys, made while idle after the first frame, import the new-run form's module).

    def action_predictions(self) -> None:
        from ffdv_tui.screens.predictions import PredictionsScreen, run_source

        run = self.selected_run
        if run is None:
            self.notify("No run selected.", severity="warning")
            return
        root = run.data_root or load_config(run.paths.config).data.root
        self.push_screen(PredictionsScreen(run_source(run.paths.root, root), self.images))

    def action_dataset(self) -> None:
        """The selected run's dataset, or the one new runs use."""
        from ffdv_tui.screens.dataset import DatasetScreen

        run = self.selected_run
        root = (run.data_root if run is not None else None) or self.data_dir
        self.push_screen(DatasetScreen(Path(root) if root else None, self.images))

    def action_checkpoints(self) -> None:
        from ffdv_tui.screens.checkpoints import CheckpointsScreen

        self.push_screen(CheckpointsScreen(self.runs_dir, self.list_models, self.images))

    def action_queue(self) -> None:
        from ffdv_tui.screens.queue import QueueScreen

        self.push_screen(QueueScreen(Path(self.runs_dir)))
    def action_compare(self) -> None:
        """The marked runs side by side (one marked run: with the selected one)."""
        from ffdv_tui.screens.compare import CompareScreen

        runs = self.main.compared_runs()
        if len(runs) < 2:
            self.notify("Mark two runs or more with space (a marks every run shown), then m compares them.",
                        severity="warning")
            return
        self.push_screen(CompareScreen(runs))

    def resume_run_named(self, name: str) -> None:
        if name in self.runs:
            self.select_run(name)
            self.main.action_resume_run()

    # ------------------------------------------------------------ new run

    def form_defaults(self) -> Config:
        """The last run started here (its model, size, epochs...: people change one thing at a time), else the defaults."""
        if self.last_started is not None:
            config = deepcopy(self.last_started)
            config.run.name = ""
            config.model.pretrained = ""
            return config
        config = load_config()
        config.data.root = str(self.data_dir) if self.data_dir else ""
        return config

    def open_new_run(self, model: str | None = None, img_size: int | None = None, data_root: str | None = None,
                     pretrained: str = "", name: str = "", stem: str | None = None) -> None:
        """The new-run form, prefilled (fine-tuning from a checkpoint, for one)."""
        config = self.form_defaults()
        config.model.name = model or config.model.name
        config.data.img_size = img_size or config.data.img_size
        config.data.root = data_root or config.data.root
        config.model.pretrained = pretrained
        config.model.stem = stem or config.model.stem
        config.run.name = name
        self._push_new_run(config)

    def start_run(self, config: Config, gpus: int = 1, queued: bool = False) -> str:
        """Create the run folder and launch its engine, or queue it (called from the form's worker thread)."""
        from engine.contract.runstart import queue_run, start_run  # reads label files with pandas: not for the first frame

        config.dist.nproc_per_node = gpus
        self.last_started = deepcopy(config)  # as the form had it ("auto" still auto): the next form's values
        if queued:
            return queue_run(config, self.runs_dir).root.name
        return start_run(config, self.runs_dir).name

    def action_new_run(self) -> None:
        self._push_new_run(self.form_defaults())

    def _push_new_run(self, defaults: Config) -> None:
        from ffdv_tui.screens.new_run import NewRunScreen  # its form widgets are not needed for the first frame

        def started(name: str | None) -> None:
            if name:
                what = "queued" if queued_marker(Path(self.runs_dir) / name).exists() else "engine started"
                self.notify(f"{printable(name)}: {what}", markup=False)
                while not isinstance(self.screen, MainScreen) and len(self.screen_stack) > 1:
                    self.pop_screen()
                self.main.select_run(name, expected=True)

        self.push_screen(NewRunScreen(defaults, self.runs_dir, self.list_models, self.start_run, self.gpus), started)

    # ------------------------------------------------------------ keys, palette, quitting

    def action_keys(self) -> None:
        """The keys screen, built once per set of keys and kept: building it lays out and renders a long table."""
        rows = key_rows(self.screen)
        name = "keys:" + repr([(row.group, row.keys, row.description, row.help) for row in rows])
        if not self.is_screen_installed(name):
            if len(self._keys_screens) >= KEYS_SCREENS_KEPT:
                self.uninstall_screen(self._keys_screens.pop(0))
            # without the palette's callables: a kept keys screen must not keep a closed screen (and its data) alive
            self.install_screen(HelpScreen([replace(row, run=None) for row in rows]), name)
            self._keys_screens.append(name)
        self.push_screen(name)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette: the map of the app (ffdv_tui.palette), then Textual's own commands that add something."""
        from ffdv_tui.palette import TEXTUAL_DUPLICATES, palette_commands

        yield from palette_commands(self, screen)
        yield from (c for c in super().get_system_commands(screen) if c.title not in TEXTUAL_DUPLICATES)

    def action_quit_app(self) -> None:
        live = [printable(r.name, 200) for r in ordered(self.runs) if r.is_live]
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
