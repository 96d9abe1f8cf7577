"""The checkpoints table's columns, fitted to its width: the names shrink before a metric is pushed out of view.

AUC, then each run's best metric (the one its "best" checkpoint was chosen by), come right
after the names, so at 80 columns a person still sees the numbers that rank checkpoints.
The ``problem`` column appears only when a checkpoint has one, and the first column marks
the rows marked to compare (``A``, key m) or picked for a matrix (``●``, space).
"""

from __future__ import annotations

import time
from dataclasses import replace

from engine.contract.fmt import fmt_bytes
from ffdv_tui.checkpoint_catalog import CheckpointEntry
from ffdv_tui.widgets.frame_table import Column

COMPARE_MARK = "A"
MATRIX_MARK = "●"
MIN_NAME = 8  # a name column never gets narrower than this
FRAME_KEYS = {"tpr_at_fpr_1e-3": "tpr"}  # a metric's column in catalog_frame, where the names differ


def _metric(value) -> str:
    return "–" if value is None or value != value else f"{value:.4f}"


MARKS = Column("mark", "", 2, style=lambda v: "bold yellow" if v else "")
BEST = Column("best", "", 1, lambda v: "★" if v else "", style=lambda v: "bold green" if v else "")
RUN = Column("run", "run", 18)
CHECKPOINT = Column("checkpoint", "checkpoint", 24)
PROBLEM = Column("problem", "problem", 24, style=lambda v: "red" if v else "")
METRICS = [
    Column("auc", "AUC", 7, _metric, "right"),
    Column("ap", "AP", 7, _metric, "right"),
    Column("accuracy", "Acc", 7, _metric, "right"),
    Column("f1", "F1", 7, _metric, "right"),
    Column("eer", "EER", 7, _metric, "right"),
    Column("tpr", "TPR@1e-3", 8, _metric, "right"),
    Column("loss", "Loss", 7, _metric, "right"),
]
TAIL = [
    Column("size", "size", 9, lambda v: fmt_bytes(v), "right"),
    Column("time", "saved", 11, lambda v: time.strftime("%m-%d %H:%M", time.localtime(v)), "right"),
]


def marks(entry: CheckpointEntry, compared: str | None, chosen: set[str]) -> str:
    return (COMPARE_MARK if entry.key == compared else "") + (MATRIX_MARK if entry.key in chosen else "")


def fitted_columns(entries: list[CheckpointEntry], width: int) -> list[Column]:
    """The table's columns for ``width`` cells: marks, names (as wide as they need, shrunk to fit AUC and the best metric), metrics."""
    best = [FRAME_KEYS.get(e.best_metric, e.best_metric) for e in entries]
    first = [m for m in METRICS if m.key == "auc"] + [m for m in METRICS if m.key != "auc" and m.key in best]
    run = max([len(e.run) for e in entries] + [len(RUN.label)])
    name = max([len(e.name) for e in entries] + [len(CHECKPOINT.label)])
    key_cells = sum(c.width + 1 for c in (MARKS, BEST, *first))
    room = max(width - key_cells - 2, 2 * MIN_NAME)  # 2: the two names' separators
    run = min(run, RUN.width)
    name = min(name, CHECKPOINT.width)
    while run + name > room and max(run, name) > MIN_NAME:  # the longer name gives up a cell first
        if run >= name:
            run -= 1
        else:
            name -= 1
    problem = [PROBLEM] if any(e.problem for e in entries) else []
    rest = [m for m in METRICS if m not in first]
    return [MARKS, BEST, replace(RUN, width=run), replace(CHECKPOINT, width=name), *first, *problem, *rest, *TAIL]
