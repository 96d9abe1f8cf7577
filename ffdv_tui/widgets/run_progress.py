"""Where the selected run stands: epoch and step bars, speed, ETA, learning rate, device memory."""

from __future__ import annotations

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive

from engine.contract.fmt import fmt_bytes, fmt_duration
from engine.contract.runstate import training_eta
from engine.contract.text import printable
from ffdv_tui.run_snapshot import RunSnapshot
from ffdv_tui.widgets.steady_text import SteadyText


def eta_seconds(s: RunSnapshot) -> float | None:
    """Training time left at the current speed: the one ETA of engine.contract.runstate, for a live run."""
    return training_eta(s) if s.is_live else None


class RunProgress(SteadyText):
    """Two bars and one line of numbers; repainted when the run's snapshot changes."""

    DEFAULT_CSS = """
    RunProgress {
        height: 3;
        padding: 0 1;
    }
    """

    run: reactive[RunSnapshot | None] = reactive(None, layout=False, repaint=False, init=False)

    def watch_run(self, s: RunSnapshot | None) -> None:
        if s is None:
            self.update("")
            return
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(width=6)
        grid.add_column(ratio=1)
        grid.add_column(justify="right", width=9)
        epochs = max(s.epochs, 1)
        done_epochs = s.epoch + (s.epoch_step / s.steps_per_epoch if s.steps_per_epoch else 0.0)
        grid.add_row("epoch", ProgressBar(total=epochs, completed=min(done_epochs, epochs)), f"{s.epoch}/{s.epochs}")
        steps = max(s.steps_per_epoch, 1)
        in_epoch = s.epoch_step if s.epoch < s.epochs else s.steps_per_epoch
        grid.add_row("step", ProgressBar(total=steps, completed=in_epoch), f"{in_epoch}/{s.steps_per_epoch}")
        self.update(Group(grid, Text(printable(readout(s, self.size.width - 2)), style="dim", no_wrap=True,
                                     overflow="ellipsis")))


def readout(s: RunSnapshot, width: int) -> str:
    """Speed, ETA, elapsed, lr, memory, GPU on one line; when it is too long the lr goes, then the memory's total,
    then the GPU load, so the memory in use is never cut to "me…" (at 80 columns, say)."""
    parts: dict[str, str] = {}
    if isinstance(s.images_per_sec, (int, float)) and s.is_live:
        parts["speed"] = f"{s.images_per_sec:,.0f} img/s"
    eta = eta_seconds(s)
    if eta is not None:
        parts["eta"] = f"ETA {fmt_duration(eta)}"
    parts["elapsed"] = f"elapsed {fmt_duration(s.duration)}"
    if isinstance(s.lr, (int, float)):
        parts["lr"] = f"lr {s.lr:.2e}"
    beat = s.heartbeat
    if beat is not None and beat.memory_used is not None:
        total = f" / {fmt_bytes(beat.memory_total)}" if beat.memory_total is not None else ""
        parts["mem"] = f"mem {fmt_bytes(beat.memory_used)}{total}"
    if beat is not None and beat.utilization is not None:
        parts["gpu"] = f"GPU {beat.utilization:.0f}%"
    for shorten in ("lr", "mem", "gpu"):
        if width <= 0 or len(" · ".join(parts.values())) <= width:
            break
        if shorten == "mem" and "mem" in parts:
            parts["mem"] = parts["mem"].split(" / ")[0]
        else:
            parts.pop(shorten, None)
    return " · ".join(parts.values())
