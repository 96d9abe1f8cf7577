"""The run queue: what ran, what runs, what waits and in which order; hold, release, cancel, move; start a runner.

The same rows as ``ffdv queue`` (engine.contract.queue_view), read in a worker once a second;
every change goes through engine.contract.queue (the order record, the claim), so the app,
the CLI and a runner never disagree about what starts next.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, OptionList, Static
from textual.widgets.option_list import Option

from engine.contract.queue_view import HELD, QueueRow
from engine.contract.text import printable
from ffdv_tui.widgets.key_bar import KeyBar
from ffdv_tui.widgets.run_list import STATUS_MARKS

REFRESH_S = 1.0


def row_prompt(row: QueueRow) -> Text:
    mark, style = ("‖", "yellow") if row.status == HELD else STATUS_MARKS.get(row.status, ("·", ""))
    text = Text()
    text.append(f"{row.place:>3} ", style="bold")
    text.append(f"{mark} {row.status:<10} ", style=style)
    text.append(printable(row.name, 60).ljust(40), style="bold")
    text.append(f" {printable(row.model, 30):<20} {row.started}", style="dim")
    return text


def runner_line(runner: dict[str, Any] | None, waiting: int) -> Text:
    if runner:
        return Text(f"queue runner: running (pid {printable(runner.get('pid'))}) · {waiting} waiting", style="green")
    return Text(f"queue runner: none · {waiting} waiting · g starts one (it outlives the app)",
                style="yellow" if waiting else "dim")


class QueueScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", tooltip="Back to the workbench"),
        Binding("h", "hold", "Hold/Release", tooltip="Keep the highlighted queued run waiting, or let it go"),
        Binding("x", "cancel_run", "Cancel run", tooltip="Take the highlighted queued run off the queue for good"),
        Binding("left_square_bracket", "move(-1)", "Earlier", tooltip="Move the highlighted queued run up the queue"),
        Binding("right_square_bracket", "move(1)", "Later", tooltip="Move the highlighted queued run down the queue"),
        Binding("g", "start_runner", "Start runner",
                tooltip="Start a queue runner in the background: it starts queued runs as slots free up"),
    ]

    class Listed(Message):
        """The queue's rows and the runner's record, as read now."""

        def __init__(self, rows: list[QueueRow], runner: dict[str, Any] | None) -> None:
            super().__init__()
            self.rows = rows
            self.runner = runner

    class Done(Message):
        """A change to the queue was made (``note``) or refused (``error``)."""

        def __init__(self, note: str = "", error: str = "") -> None:
            super().__init__()
            self.note = note
            self.error = error

    def __init__(self, runs_dir: Path) -> None:
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self.rows: list[QueueRow] = []
        self.listed = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="queue-runner")
        yield OptionList(id="queue-list", classes="pane")
        yield KeyBar()

    def on_mount(self) -> None:
        self.app.sub_title = "queue"
        self.query_one("#queue-list", OptionList).border_title = "queue: done, running, waiting (in order)"
        self.refresh_rows()
        self.set_interval(REFRESH_S, self.refresh_rows)

    @work(thread=True, exclusive=True, group="queue-read")
    def refresh_rows(self) -> None:
        from engine.contract.queue_runner import runner_alive
        from engine.contract.queue_view import queue_rows

        self.post_message(self.Listed(queue_rows(self.runs_dir), runner_alive(self.runs_dir)))

    @on(Listed)
    def _listed(self, message: Listed) -> None:
        self.query_one("#queue-runner", Static).update(
            runner_line(message.runner, sum(1 for row in message.rows if row.waiting)))
        if message.rows == self.rows and self.listed:
            return
        listing = self.query_one("#queue-list", OptionList)
        highlighted = self.highlighted_name
        self.rows = message.rows
        listing.clear_options()
        listing.add_options([Option(row_prompt(row), id=row.name) for row in self.rows])
        names = [row.name for row in self.rows]
        if highlighted in names:
            listing.highlighted = names.index(highlighted)
        elif self.rows:
            listing.highlighted = next((i for i, row in enumerate(self.rows) if row.waiting), 0)
        self.listed = True

    @property
    def highlighted_name(self) -> str | None:
        listing = self.query_one("#queue-list", OptionList)
        index = listing.highlighted
        return self.rows[index].name if index is not None and index < len(self.rows) else None

    def _waiting_row(self) -> QueueRow | None:
        name = self.highlighted_name
        row = next((row for row in self.rows if row.name == name), None)
        if row is None or not row.waiting:
            self.notify("Highlight a queued run first (the numbered ones).", severity="warning")
            return None
        return row

    def action_hold(self) -> None:
        row = self._waiting_row()
        if row is not None:
            self._change("release" if row.status == HELD else "hold", row.name)

    def action_cancel_run(self) -> None:
        from ffdv_tui.screens.confirm import ConfirmScreen

        row = self._waiting_row()
        if row is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._change("cancel", row.name)

        self.app.push_screen(ConfirmScreen(f"Cancel {printable(row.name)}? It never starts; its folder stays.",
                                           yes="Cancel run", no="Keep it"), confirmed)

    def action_move(self, by: int) -> None:
        row = self._waiting_row()
        if row is not None:
            self._change("move", row.name, max(1, int(row.place) + by))

    def action_start_runner(self) -> None:
        self._change("start", "")

    @work(thread=True, group="queue-change")
    def _change(self, what: str, name: str, position: int = 0) -> None:
        from engine.contract import queue
        from engine.contract.errors import FfdvError
        from engine.contract.queue_runner import runner_alive, start_runner_detached

        try:
            if what == "start":
                alive = runner_alive(self.runs_dir)
                if alive:
                    raise FfdvError(f"a queue runner is already running (pid {alive.get('pid')})")
                note = f"queue runner started (pid {start_runner_detached(self.runs_dir)})"
            elif what == "move":
                note = f"{name}: now number {queue.move(self.runs_dir, name, position)}"
            else:
                getattr(queue, what)(self.runs_dir, name)
                note = f"{name}: {what}{'ed' if what != 'hold' else ''}".replace("holded", "held")
        except (FfdvError, OSError) as exc:
            self.post_message(self.Done(error=str(exc)))
            return
        self.post_message(self.Done(note=note))
        self.refresh_rows()

    @on(Done)
    def _done(self, message: Done) -> None:
        if message.error:
            self.notify(printable(message.error), severity="error", markup=False)
        else:
            self.notify(printable(message.note), markup=False, timeout=3)
