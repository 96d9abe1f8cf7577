"""Where the selected run stands: epoch and step bars, speed, ETA, learning rate, device memory."""

from __future__ import annotations

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from engine.contract.fmt import fmt_bytes, fmt_duration
from ffdv_tui.runs import RunEntry
from ffdv_tui.widgets.steady_text import SteadyText


def eta_seconds(entry: RunEntry) -> float | None:
    """Training time left at the current speed (validation not counted)."""
    s = entry.state
    if not s.images_per_sec or not s.steps_per_epoch or not s.epochs or not entry.is_live:
        return None
    steps_left = (s.epochs - s.epoch) * s.steps_per_epoch - s.epoch_step
    images_per_step = s.num_train / s.steps_per_epoch if s.num_train else 0
    return max(0.0, steps_left * images_per_step / s.images_per_sec) if images_per_step else None


class RunProgress(SteadyText):
    """Two bars and one line of numbers; repainted when the run's state changes."""

    def show(self, entry: RunEntry | None) -> None:
        if entry is None:
            self.update("")
            return
        s = entry.state
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
        parts = []
        if s.images_per_sec is not None and entry.is_live:
            parts.append(f"{s.images_per_sec:,.0f} img/s")
        eta = eta_seconds(entry)
        if eta is not None:
            parts.append(f"ETA {fmt_duration(eta)}")
        parts.append(f"elapsed {fmt_duration(s.duration)}")
        if s.lr is not None:
            parts.append(f"lr {s.lr:.2e}")
        beat = s.heartbeat or {}
        if beat.get("memory_used") is not None:
            total = f" / {fmt_bytes(beat['memory_total'])}" if beat.get("memory_total") else ""
            parts.append(f"mem {fmt_bytes(beat['memory_used'])}{total}")
        if beat.get("utilization") is not None:
            parts.append(f"GPU {beat['utilization']:.0f}%")
        self.update(Group(grid, Text(" · ".join(parts), style="dim", no_wrap=True, overflow="ellipsis")))
