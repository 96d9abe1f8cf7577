"""The end of the selected run's engine.log, and what went wrong when a run crashed or failed."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from engine.contract.status import RunStatus
from ffdv_tui.runs import RunEntry
from ffdv_tui.widgets.steady_text import SteadyText


class LogTail(SteadyText):
    def show(self, entry: RunEntry | None) -> None:
        if entry is None:
            self.update("")
            return
        parts = []
        if entry.status == RunStatus.CRASHED:
            how = entry.exit.describe() if entry.exit else "exit status unknown"
            parts.append(Text(f"✗ crashed: the engine ended ({how}) without finishing the run. "
                              "Press r to resume from its newest checkpoint.", style="bold red"))
            parts.append(Text("Its last lines:", style="red"))
        elif entry.status == RunStatus.FAILED:
            message = entry.state.errors[-1]["message"] if entry.state.errors else "see the log"
            parts.append(Text(f"! failed: {message}", style="bold red"))
        elif entry.status == RunStatus.UNRESPONSIVE:
            parts.append(Text("? no event from this run for a minute: the engine may be hung "
                              "(it runs on another host, so its process cannot be checked)", style="red"))
        elif entry.status == RunStatus.STOPPED:
            parts.append(Text("■ stopped. Press r to continue it from its newest checkpoint.", style="yellow"))
        if entry.state.newer_protocol:
            parts.append(Text(f"this run was written by a newer ffdv (protocol {entry.state.newer_protocol}); "
                              "upgrade to see all of it", style="yellow"))
        for warning in entry.state.warnings[-2:]:
            parts.append(Text(f"warning: {warning}", style="yellow", no_wrap=True, overflow="ellipsis"))
        width = max(self.size.width - 4, 20)
        used = sum(len(part.plain) // width + 1 for part in parts)  # the banners wrap
        room = max(self.line_budget() - used, 1)  # the newest log lines are the ones to keep
        parts += [Text(line, style="dim", no_wrap=True, overflow="ellipsis") for line in entry.log[-room:]]
        self.update(Group(*parts))

    def line_budget(self) -> int:
        """Content lines that fit: the stylesheet gives the log up to 30% of the run view, less its border."""
        height = self.parent.size.height if self.parent is not None else 0
        return max(int(height * 0.3) - 2, 3) if height else 6
