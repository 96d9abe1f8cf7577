"""The dataset screen's leakage audit (l): near-copies across splits, listed in pairs and shown side by side.

A base of ``DatasetScreen``, which lends it the dataset (``root``, the label files it has
read), the stop flag it shares with the health scan, and the widgets it writes to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.text import Text
from textual import on, work
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ProgressBar, Static
from textual.worker import get_current_worker

from engine.contract.text import plain_text
from ffdv_tui.widgets.frame_table import Column, FrameTable
from ffdv_tui.widgets.image_preview import ImagePreview

PAIR_COLUMNS = [
    Column("split", "split", 5),
    Column("name", "image", 26),
    Column("other_split", "copy in", 7),
    Column("other_name", "its near-copy", 26),
    Column("distance", "bits", 4, lambda v: str(int(v)), "right"),
]


class LeakageAuditScreen(Screen):
    """The audit's worker, its messages and how its report and pairs are shown."""

    @dataclass
    class AuditProgress(Message):
        """Where the leakage audit is: what it does (hashing a split, comparing two), done of total."""

        what: str
        done: int
        total: int

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, LeakageAuditScreen.AuditProgress)

    @dataclass
    class AuditDone(Message):
        """The leakage audit's report (engine.data.leakage.LeakageReport), or why it could not run."""

        report: Any
        error: str | None = None

    root: Path | None
    _found: Any  # (Dataset, [SplitProblem]) once the label files are read
    _stop_scan: bool
    _pair_folders: dict[str, Path]  # split -> image folder, of the audited dataset

    def _show_progress(self) -> None:
        """Show the progress bar and clear the stop flag (the dataset screen's, shared with its scan)."""
        raise NotImplementedError

    def action_leakage(self) -> None:
        if self.root is None:
            return
        self._show_progress()
        self._audit(self.root)

    @work(thread=True, exclusive=True, group="dataset-leakage")
    def _audit(self, root: Path) -> None:
        from engine.data.dataset import find_dataset
        from engine.data.leakage import audit

        worker = get_current_worker()
        try:
            dataset = self._found[0] if self._found is not None else find_dataset(root, check_files=False)
            self._pair_folders = {name: split.folder for name, split in dataset.splits.items()}
            report = audit(root, on_progress=lambda what, done, total: self.post_message(self.AuditProgress(what, done, total)),
                           should_stop=lambda: self._stop_scan or worker.is_cancelled, dataset=dataset)
        except Exception as exc:  # not a dataset, no training split: the engine's own words
            self.post_message(self.AuditDone(None, str(exc)))
            return
        self.post_message(self.AuditDone(report))

    @on(AuditProgress)
    def _audit_progress(self, message: AuditProgress) -> None:
        self.query_one("#scan-progress", ProgressBar).update(total=max(message.total, 1), progress=message.done)
        self.query_one("#scan-status", Static).update(
            plain_text(f" leakage audit: {message.what} {message.done:,} of {message.total:,} (x cancels)", "dim"))

    @on(AuditDone)
    def _audit_done(self, message: AuditDone) -> None:
        from engine.data.leakage import WARN_SHARE

        self.query_one("#scan-progress", ProgressBar).display = False
        status = self.query_one("#scan-status", Static)
        report = message.report
        if report is None:
            status.update(plain_text(f" leakage audit: {message.error}", "red"))
            return
        if report.cancelled:
            status.update(Text(" leakage audit cancelled (l runs it again)", style="dim"))
            return
        share = report.val_share
        unhashable = f" · {len(report.unhashable):,} images could not be hashed" if report.unhashable else ""
        style = "yellow" if share is not None and share > WARN_SHARE else "green"
        status.update(plain_text(f" {report.headline()}{unhashable}", style))
        table = self.query_one("#ds-pairs", FrameTable)
        table.display = bool(report.pairs)
        frame = pd.DataFrame([(p.split, p.name, p.other_split, p.other_name, p.distance) for p in report.pairs],
                             columns=[c.key for c in PAIR_COLUMNS])
        table.set_frame(frame)
        table.border_title = f"near-copies: {len(frame):,} pairs"

    @on(FrameTable.RowHighlighted, "#ds-pairs")
    def _pair(self, event: FrameTable.RowHighlighted) -> None:
        """Both pictures of the highlighted pair, side by side."""
        get = lambda key: str(event.table.value_at(event.row, key))
        split, name, other_split, other_name = get("split"), get("name"), get("other_split"), get("other_name")
        if split not in self._pair_folders or other_split not in self._pair_folders:
            return
        distance = get("distance")
        pair = self.query_one("#ds-pair-preview", ImagePreview)
        pair.display = True
        self.query_one("#ds-preview", ImagePreview).show(
            self._pair_folders[split] / name, plain_text(f"{split}: {name}"), [])
        pair.show(self._pair_folders[other_split] / other_name,
                  plain_text(f"{other_split}: {other_name} · {distance} bits apart"), [])

    # ------------------------------------------------------------ the images
