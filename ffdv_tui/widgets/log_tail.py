"""The end of the selected run's engine.log, and what went wrong when a run crashed or failed.

Log lines, warnings and error messages are the engine's (or an attacker's) text: each goes
through printable() and is shown as plain text, so an escape sequence or markup in them is
shown, never acted on.
"""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.reactive import reactive

from engine.contract.status import RunStatus
from engine.contract.text import plain_text, printable
from ffdv_tui.run_snapshot import RunSnapshot
from ffdv_tui.widgets.steady_text import SteadyText


class LogTail(SteadyText):
    DEFAULT_CSS = """
    LogTail {
        min-height: 3;
        padding: 0 1;
    }
    """

    run: reactive[RunSnapshot | None] = reactive(None, layout=False, repaint=False, init=False)

    def watch_run(self, run: RunSnapshot | None) -> None:
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
        room = max(self.line_budget() - used, 1)  # the newest log lines are the ones to keep
        parts += [Text(printable(line), style="dim", no_wrap=True, overflow="ellipsis") for line in run.log[-room:]]
        self.update(Group(*parts))

    def line_budget(self) -> int:
        """Content lines that fit: whatever height the stylesheet gave this widget, less border and padding."""
        return max(self.size.height, 3) if self.size.height else 6
