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

from engine.contract.fmt import fmt_count
from engine.contract.text import plain_text
from ffdv_tui.widgets.frame_table import Column, FrameTable
from ffdv_tui.widgets.image_preview import ImagePreview

PAIR_COLUMNS = [
    Column("split", "split", 5),
    Column("name", "image", 26, min_width=12),
    Column("label", "label", 5),
    Column("other_split", "copy in", 10),
    Column("other_name", "its near-copy (or why it has none)", 34, min_width=12),
    Column("other_label", "label", 5),
    Column("distance", "bits", 4, lambda v: "–" if v < 0 else str(int(v)), "right"),
]
UNHASHABLE = "unhashable"  # the "copy in" of an image that could not be hashed (its row says why)
LABELS = {0: "real", 1: "fake"}


def labels_of(dataset):
    """(split, name) -> "real"/"fake" for the pairs' rows only (an index per split, made on first use)."""
    indexes: dict[str, dict[str, int]] = {}

    def label(split: str, name: str) -> str:
        found = dataset.splits.get(split) if dataset is not None else None
        if found is None or found.targets is None:
            return ""
        if split not in indexes:
            indexes[split] = {n: i for i, n in enumerate(found.names)}
        row = indexes[split].get(name)
        return "" if row is None else LABELS.get(int(found.targets[row]), "?")

    return label


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
    _audited: Any = None  # the audited dataset (engine.data.dataset.Dataset): the pairs' labels

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
            self._audited = dataset
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
        self.refresh_bindings()  # x (cancel) leaves the key bar
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
        table.display = bool(report.pairs or report.unhashable)
        label = labels_of(self._audited)
        rows = [(p.split, p.name, label(p.split, p.name), p.other_split, p.other_name,
                 label(p.other_split, p.other_name), p.distance) for p in report.pairs]
        rows += [(u.split, u.name, label(u.split, u.name), UNHASHABLE, u.reason, "", -1) for u in report.unhashable]
        table.set_frame(pd.DataFrame(rows, columns=[c.key for c in PAIR_COLUMNS]))
        unhashable = f", {fmt_count(len(report.unhashable), 'image')} not hashed" if report.unhashable else ""
        table.border_title = f"near-copies: {len(report.pairs):,} pairs{unhashable} (tab here, ↑↓ for each)"

    @on(FrameTable.RowHighlighted, "#ds-pairs")
    def _pair(self, event: FrameTable.RowHighlighted) -> None:
        """Both pictures of the highlighted pair, side by side."""
        get = lambda key: str(event.table.value_at(event.row, key))
        split, name, other_split, other_name = get("split"), get("name"), get("other_split"), get("other_name")
        if other_split == UNHASHABLE and split in self._pair_folders:  # the image alone, and why
            self.query_one("#ds-pair-preview", ImagePreview).display = False
            self.query_one("#ds-preview", ImagePreview).show(
                self._pair_folders[split] / name, plain_text(f"{split}: {name} · not hashed: {other_name}"), [])
            return
        if split not in self._pair_folders or other_split not in self._pair_folders:
            return
        distance = get("distance")
        pair = self.query_one("#ds-pair-preview", ImagePreview)
        pair.display = True
        label, other_label = get("label"), get("other_label")
        self.query_one("#ds-preview", ImagePreview).show(
            self._pair_folders[split] / name, plain_text(f"{split}: {name} ({label or 'no label'})"), [])
        pair.show(self._pair_folders[other_split] / other_name,
                  plain_text(f"{other_split}: {other_name} ({other_label or 'no label'}) · {distance} bits apart"), [])

    # ------------------------------------------------------------ the images
