"""The end of the selected run's engine.log, and what went wrong when a run crashed or failed.

Log lines, warnings and error messages are the engine's (or an attacker's) text: each goes
through printable() and is shown as plain text, so an escape sequence or markup in them is
shown, never acted on.

The pane keeps the newest lines in view as they arrive; when focused, the arrow and page keys
(or the mouse wheel anywhere over it) move back through older lines, and End follows again.
The banners (crashed, failed, stopped) stay at the top whatever the scroll.
"""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.reactive import reactive

from engine.contract.status import RunStatus
from engine.contract.text import plain_text, printable
from ffdv_tui.run_snapshot import RunSnapshot
from ffdv_tui.widgets.steady_text import SteadyText

WHEEL_LINES = 3


class LogTail(SteadyText):
    DEFAULT_CSS = """
    LogTail {
        min-height: 3;
        padding: 0 1;
    }
    """
    BINDINGS = [
        Binding("up", "older(1)", "Older line", show=False),
        Binding("down", "newer(1)", "Newer line", show=False),
        Binding("pageup", "older_page", "Older page", show=False),
        Binding("pagedown", "newer_page", "Newer page", show=False),
        Binding("home", "oldest", "Oldest line", show=False),
        Binding("end", "follow", "Follow new lines", show=False),
    ]
    can_focus = True

    run: reactive[RunSnapshot | None] = reactive(None, layout=False, repaint=False, init=False)
    lines_up: reactive[int] = reactive(0, layout=False, repaint=False, init=False)
    """How many of the newest log lines are below the view: 0 follows new lines as they come."""
    _room = 6  # log lines the last redraw had space for: one page

    def watch_lines_up(self, lines_up: int) -> None:
        self.border_subtitle = f"↓ {lines_up} newer · End follows" if lines_up else ""
        self.redraw()

    def scroll_by_lines(self, lines: int) -> None:
        newest_first = len(self.run.log) if self.run else 0
        self.lines_up = max(0, min(self.lines_up + lines, newest_first - self._room))

    def action_older(self, lines: int) -> None:
        self.scroll_by_lines(lines)

    def action_newer(self, lines: int) -> None:
        self.scroll_by_lines(-lines)

    def action_older_page(self) -> None:
        self.scroll_by_lines(self._room)

    def action_newer_page(self) -> None:
        self.scroll_by_lines(-self._room)

    def action_oldest(self) -> None:
        self.scroll_by_lines(len(self.run.log) if self.run else 0)

    def action_follow(self) -> None:
        self.lines_up = 0

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.scroll_by_lines(WHEEL_LINES)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.scroll_by_lines(-WHEEL_LINES)

    def watch_run(self, old: RunSnapshot | None, run: RunSnapshot | None) -> None:
        if self.lines_up and old is not None and run is not None and old.name == run.name:
            self.lines_up += lines_added(old.log, run.log)  # the lines in view stay in view
        elif old is None or run is None or old.name != run.name:
            self.lines_up = 0
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        run = self.run
        if run is None:
            self.update("")
            return
        parts = []
        if run.problem:
            parts.append(plain_text(f"! this run folder is damaged: {run.problem}", "bold red"))
        if run.status == RunStatus.CRASHED:
            how = run.exit.describe() if run.exit else "exit status unknown"
            parts.append(plain_text(f"✗ crashed: the engine ended ({how}) without finishing the run. "
                                    "Press r to resume from its newest checkpoint.", "bold red"))
            parts.append(Text("Its last lines:", style="red"))
        elif run.status == RunStatus.FAILED:
            parts.append(plain_text(f"! failed: {run.last_error or 'see the log'}", "bold red"))
        elif run.status == RunStatus.UNRESPONSIVE:
            parts.append(Text("? no event from this run for a minute: the engine may be hung "
                              "(it runs on another host, so its process cannot be checked)", style="red"))
        elif run.status == RunStatus.STOPPED:
            parts.append(Text("■ stopped. Press r to continue it from its newest checkpoint.", style="yellow"))
        if run.newer_protocol:
            parts.append(Text(f"this run was written by a newer ffdv (protocol {run.newer_protocol}); "
                              "upgrade to see all of it", style="yellow"))
        for warning in run.warnings:
            parts.append(Text(f"warning: {printable(warning)}", style="yellow", no_wrap=True, overflow="ellipsis"))
        width = max(self.size.width - 4, 20)
        used = sum(len(part.plain) // width + 1 for part in parts)  # the banners wrap
        room = self._room = max(self.line_budget() - used, 1)  # the newest log lines are the ones to keep
        end = len(run.log) - min(self.lines_up, max(len(run.log) - room, 0))
        shown = run.log[max(end - room, 0):end]
        parts += [Text(printable(line), style="dim", no_wrap=True, overflow="ellipsis") for line in shown]
        self.update(Group(*parts))

    def line_budget(self) -> int:
        """Content lines that fit: whatever height the stylesheet gave this widget, less border and padding."""
        return max(self.size.height, 3) if self.size.height else 6


def lines_added(old: list[str], new: list[str]) -> int:
    """How many lines ``new`` has after ``old``'s last one (a tail of the same log, read again)."""
    if not old or not new:
        return 0
    for back, line in enumerate(reversed(new)):
        if line == old[-1]:
            return back
    return 0
