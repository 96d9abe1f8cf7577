"""The queue as a viewer shows it: finished and running queue runs, then the queued ones in order.

Shared by ``ffdv queue`` and the app's queue screen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from engine.contract.errors import FfdvError
from engine.contract.launch import run_status
from engine.contract.queue import queued_in_order, queued_marker, read_order
from engine.contract.runstate import load_run
from engine.contract.runstore import RunPaths, run_folders
from engine.contract.status import RunStatus

HELD = "held"


@dataclass(frozen=True)
class QueueRow:
    place: str  # "1", "2" ... for queued runs; "" for the others
    name: str
    status: str  # a RunStatus, or "held"
    model: str
    started: str

    @property
    def waiting(self) -> bool:
        return bool(self.place)


def queue_rows(runs_root: Path) -> list[QueueRow]:
    """Runs that came through the queue, and any live run (it takes a slot): finished, running, then queued."""
    record = read_order(runs_root)
    order = queued_in_order(runs_root, record)
    done, live = [], []
    for folder in run_folders(runs_root):
        if folder.name in order:
            continue
        state = load_run(folder)
        status = run_status(RunPaths(folder), state)
        if not status.is_live and not queued_marker(folder).exists():
            continue
        model = str(state.model or _model_of(folder))
        when = time.strftime("%m-%d %H:%M", time.localtime(state.started_at)) if state.started_at else "–"
        (live if status.is_live else done).append((state.started_at or 0, folder.name, str(status), model, when))
    rows = [QueueRow("", name, status, model, when) for _, name, status, model, when in sorted(done) + sorted(live)]
    for place, name in enumerate(order, 1):
        status = HELD if name in record.held else str(RunStatus.QUEUED)
        rows.append(QueueRow(str(place), name, status, _model_of(Path(runs_root) / name), "–"))
    return rows


def _model_of(folder: Path) -> str:
    from engine.contract.config import load_config

    try:
        return load_config(folder / "config.toml").model.name
    except FfdvError:
        return "?"
