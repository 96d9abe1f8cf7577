"""Knowing the data: splits, class balance, image sizes and formats, a health scan, and the images themselves.

The scan (engine.data.scan) runs in a worker, shows its progress, can be cancelled (x),
and reports unreadable or suspicious files and label-file problems in the engine's
own words, with line numbers. The image table opens a split's first rows at once and
the rest when its label file is read, so a million-line label file is on screen in
about a second; class filter and name search work on the whole split.

The leakage audit (l; engine.data.leakage) runs in a worker too, with progress, and lists
every validation or test image with a near-copy in training (or test in validation); the
highlighted pair is shown side by side.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Header, Input, Label, ProgressBar, Select, Static
from textual.worker import get_current_worker

from engine.contract.text import plain_text, printable
from engine.data.dataset import FFDI_SPLITS, ffdi_label_file
from engine.data.scan import ScanReport, scan_dataset
from ffdv_tui.screens.input_exits import InputExits
from ffdv_tui.screens.leakage_audit import PAIR_COLUMNS, LeakageAuditScreen
from ffdv_tui.widgets.frame_table import Column, FrameTable
from ffdv_tui.widgets.image_preview import ImagePreview
from ffdv_tui.widgets.key_bar import KeyBar
from ffdv_tui.widgets.path_suggester import PathSuggester

QUICK_ROWS = 1000
LABELS = {0: "real", 1: "fake", -1: "–"}
IMAGE_COLUMNS = [
    Column("img_name", "image", 44, min_width=12),
    Column("target", "label", 6, lambda v: LABELS.get(int(v), "?")),
]
ISSUE_COLUMNS = [
    Column("split", "split", 6),
    Column("line", "line", 7, lambda v: "" if v is None or v != v else str(int(v)), "right"),
    Column("kind", "kind", 10, style=lambda v: "yellow" if v == "mode" else "red"),
    Column("message", "what is wrong", 200),
]
CLASS_FILTERS = {"all": "all classes", "real": "real only", "fake": "fake only"}


def split_table(report: ScanReport) -> Table:
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    for column in ("split", "images", "real", "fake", "scanned", "smallest", "largest", "formats", "issues"):
        table.add_column(column, justify="left" if column in ("split", "formats") else "right", no_wrap=True)
    for stats in report.splits.values():
        size = lambda s: f"{s[0]}×{s[1]}" if s else "–"
        formats = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.formats.items(), key=lambda kv: -kv[1])) or "–"
        issues = stats.issues - stats.issue_counts.get("mode", 0)
        table.add_row(plain_text(stats.split), f"{stats.images:,}", "–" if stats.real is None else f"{stats.real:,}",
                      "–" if stats.fake is None else f"{stats.fake:,}", f"{stats.scanned:,}", size(stats.min_size),
                      size(stats.max_size), plain_text(formats), Text(f"{issues:,}", style="red" if issues else "green"))
    return table


def shortcut_text(shortcut: dict) -> Text:
    """The scan's shortcut audit in one line: a warning when metadata alone predicts the label."""
    if shortcut["warning"]:
        return plain_text(f"shortcut: {shortcut['message']}", "bold yellow", 2000, multiline=True)
    return plain_text(f"shortcut audit: {shortcut['message']}", "dim", 2000, multiline=True)


def issues_frame(report: ScanReport) -> pd.DataFrame:
    return pd.DataFrame([{"split": i.split, "line": i.line, "kind": i.kind, "message": i.message, "name": i.name}
                         for i in report.issues], columns=["split", "line", "kind", "message", "name"])


def quick_split(root: Path, split: str) -> pd.DataFrame | None:
    """The first rows of an FFDI split's label file, read in milliseconds (the whole file follows)."""
    label = ffdi_label_file(root, split)
    if not label.is_file():
        return None
    try:
        frame = pd.read_csv(label, nrows=QUICK_ROWS, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if "img_name" not in frame.columns:
        return None
    targets = pd.to_numeric(frame["target"], errors="coerce").fillna(-1) if "target" in frame else -1
    return pd.DataFrame({"img_name": frame["img_name"], "target": np.asarray(targets, dtype=np.int64)})


def scan_status(report: ScanReport) -> Text:
    """The line under the summary: where the scan is, how many images and problems (colour modes are notes)."""
    problems = sum(1 for i in report.issues if i.kind != "mode")
    if report.done:
        state = "scan done" if not problems and not report.label_problems else "scan done: problems below"
    elif report.cancelled:
        state = "scan cancelled (r rescans)"
    else:
        state = "scanning… (x cancels)"
    return Text(f" {state} · {report.scanned:,} of {report.images:,} images · {problems:,} problems "
                f"in {report.seconds:.0f}s", style="dim")


class DatasetScreen(InputExits, LeakageAuditScreen):
    TABLE = "#ds-images"
    BINDINGS = [
        *InputExits.EXIT_BINDINGS,
        Binding("x", "cancel_scan", "Cancel scan"),
        Binding("r", "rescan", "Rescan"),
        Binding("l", "leakage", "Leakage audit"),
        Binding("s", "spectra", "Spectra", tooltip="Mean residual spectra of the split's real and fake images, "
                "their difference and radial power (a sample of 100 per class)"),
        Binding("slash", "focus('#ds-search')", "Search"),
    ]

    @dataclass
    class SplitRead(Message):
        """Rows of the current split: the first ones (``partial``) or all of them."""

        frame: pd.DataFrame
        folder: Path | None
        partial: bool

    @dataclass
    class LabelsRead(Message):
        """The label files were read: (Dataset, problems), or None with the reason."""

        found: Any
        error: str | None = None

    @dataclass
    class ScanProgress(Message):
        """Where the health scan is; a newer report replaces any still queued (the scan outruns the screen)."""

        report: ScanReport

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, DatasetScreen.ScanProgress)

    def __init__(self, root: Path | None, images: str = "halfcell") -> None:
        super().__init__()
        self.root = root
        self.images_mode = images
        self.split_frame: pd.DataFrame | None = None
        self.split_folder: Path | None = None
        self._stop_scan = False
        self._found = None  # (Dataset, [SplitProblem]) once the label files are read
        self._pair_folders: dict[str, Path] = {}  # split -> image folder, of the audited dataset

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="ds-top"):
            yield Label("Dataset")
            yield Input(str(self.root or ""), id="ds-path", compact=True, suggester=PathSuggester(),
                        placeholder="a dataset folder (enter opens; → completes)")
        yield Static(id="ds-summary")
        with Horizontal(id="ds-scan"):
            yield ProgressBar(id="scan-progress", show_eta=True)
            yield Static(id="scan-status")
        yield FrameTable(ISSUE_COLUMNS, id="ds-issues", classes="pane")
        yield Static(id="issue-detail")
        yield FrameTable(PAIR_COLUMNS, id="ds-pairs", classes="pane")
        with Horizontal(id="ds-body"):
            with Vertical(id="ds-left"):
                with Horizontal(id="ds-filters"):
                    yield Select([(s, s) for s in ("train", "val", "test")], value="train", id="ds-split",
                                 allow_blank=False, compact=True)
                    yield Select([(v, k) for k, v in CLASS_FILTERS.items()], value="all", id="ds-class",
                                 allow_blank=False, compact=True)
                    yield Input(placeholder="search (/)", id="ds-search", compact=True)
                yield FrameTable(IMAGE_COLUMNS, id="ds-images", classes="pane")
            yield ImagePreview(self.images_mode, id="ds-preview", classes="pane")
            yield ImagePreview(self.images_mode, id="ds-pair-preview", classes="pane")
        yield KeyBar()

    def on_screen_resume(self) -> None:
        self.app.sub_title = f"dataset · {printable(self.root)}" if self.root else "dataset"

    def on_mount(self) -> None:
        self.query_one("#ds-issues").display = False
        self.query_one("#issue-detail").display = False
        self.query_one("#ds-pairs").display = False
        self.query_one("#ds-pair-preview").display = False
        if self.root is not None:
            self.open(self.root)
        self.query_one("#ds-images", FrameTable).focus()

    def open(self, root: Path) -> None:
        self.root = root
        self.app.sub_title = f"dataset · {printable(root)}"
        self.action_rescan()

    @on(Input.Submitted, "#ds-path")
    def _path_entered(self, event: Input.Submitted) -> None:
        self.open(Path(event.value.strip()).expanduser())

    # ------------------------------------------------------------ reading the dataset and the health scan

    def _show_progress(self) -> None:
        """An empty, indeterminate bar for a scan or an audit about to start (x cancels either)."""
        self._stop_scan = False
        bar = self.query_one("#scan-progress", ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """x (cancel) is in the key bar only while a scan or an audit runs (its progress bar is shown)."""
        if action == "cancel_scan":
            bars = self.query("#scan-progress")
            return bool(bars) and bars.first().display
        return True

    def action_spectra(self) -> None:
        if self.root is None:
            return
        from ffdv_tui.screens.spectrum import SpectrumScreen

        self.app.push_screen(SpectrumScreen(self.root, str(self.query_one("#ds-split", Select).value),
                                           self.images_mode))

    def action_rescan(self) -> None:
        """Read the label files once: the image table and the scan both use what was read."""
        if self.root is None:
            return
        self._show_progress()
        self._read_and_scan(self.root, self.current_split)

    def action_cancel_scan(self) -> None:
        self._stop_scan = True

    @property
    def current_split(self) -> str:
        return str(self.query_one("#ds-split", Select).value)

    @work(thread=True, exclusive=True, group="dataset-scan")
    def _read_and_scan(self, root: Path, split: str) -> None:
        from engine.data.dataset import SplitProblem, find_dataset  # pandas-heavy: loaded here, in the worker

        worker = get_current_worker()
        quick = quick_split(root, split)
        if quick is not None:
            self.post_message(self.SplitRead(quick, None, True))
            time.sleep(0.2)  # let the first rows reach the screen before the whole file takes the CPU
        problems: list[SplitProblem] = []
        try:
            found = (find_dataset(root, check_files=False, problems=problems), problems)
            self.post_message(self.LabelsRead(found))
        except Exception as exc:
            found = None
            self.post_message(self.LabelsRead(None, str(exc)))
        report = scan_dataset(root, on_progress=lambda r: self.post_message(self.ScanProgress(r)),
                              should_stop=lambda: self._stop_scan or worker.is_cancelled, found=found)
        self.post_message(self.ScanProgress(report))

    @on(SplitRead)
    def _split_read(self, message: SplitRead) -> None:
        self._show_split(message.frame, message.folder, message.partial)

    @on(LabelsRead)
    def _labels_read(self, message: LabelsRead) -> None:
        self._found = message.found
        if message.found is None:
            self._split_missing(message.error or "")
        else:
            self._show_current_split()

    @on(ScanProgress)
    def _scan_progress(self, message: ScanProgress) -> None:
        report = message.report
        summary = self.query_one("#ds-summary", Static)
        status = self.query_one("#scan-status", Static)
        bar = self.query_one("#scan-progress", ProgressBar)
        if report.error:
            summary.update(plain_text(report.error, "red", multiline=True))
            bar.display = False
            self.refresh_bindings()
            status.update("")
            return
        parts = [plain_text(f"{report.root} · {report.layout} layout", "bold"), split_table(report)]
        parts += [plain_text(problem, "red", multiline=True) for problem in report.label_problems]
        if report.shortcut is not None:
            parts.append(shortcut_text(report.shortcut))
        summary.update(Group(*parts))
        bar.update(total=max(report.images, 1), progress=report.scanned)
        if report.done or report.cancelled:
            bar.display = False
        if not bar.display:
            self.refresh_bindings()
        status.update(scan_status(report))
        table = self.query_one("#ds-issues", FrameTable)
        table.display = bool(report.issues)
        self.query_one("#issue-detail").display = bool(report.issues)
        if report.issues and (report.done or report.cancelled or table.row_count != len(report.issues)):
            table.set_frame(issues_frame(report), keep_index=table.index_at(table.cursor_row))

    @on(Select.Changed, "#ds-split")
    def _split_changed(self) -> None:
        if self._found is not None:
            self._show_current_split()

    def _show_current_split(self) -> None:
        dataset, problems = self._found
        split = self.current_split
        if split not in dataset.splits and dataset.splits and not any(p.split == split for p in problems):
            self.query_one("#ds-split", Select).value = next(iter(dataset.splits))  # a benchmark of one split
            return  # the Select's change shows it
        found = dataset.splits.get(split)
        if found is None:
            reason = next((p.message for p in problems if p.split == split), f"the dataset has no {split} split")
            self._split_missing(reason)
            return
        targets = found.targets if found.targets is not None else np.full(len(found), -1)
        frame = pd.DataFrame({"img_name": found.names, "target": np.asarray(targets, dtype=np.int64)})
        self._show_split(frame, found.folder, False)

    def _split_missing(self, reason: str) -> None:
        self.split_frame = None
        self.query_one("#ds-images", FrameTable).set_frame(pd.DataFrame(columns=["img_name", "target"]))
        self.notify(printable(reason.splitlines()[0] if reason else ""), severity="warning", timeout=6, markup=False)

    def _show_split(self, frame: pd.DataFrame, folder: Path | None, partial: bool) -> None:
        self.split_frame = frame
        if folder is not None:
            self.split_folder = folder
        elif self.root is not None:
            self.split_folder = self.root / FFDI_SPLITS[str(self.query_one("#ds-split", Select).value)]  # a quick read
        self._filter(partial)

    @on(Select.Changed, "#ds-class")
    @on(Input.Changed, "#ds-search")
    def _filters_changed(self) -> None:
        self._filter()

    def _filter(self, partial: bool = False) -> None:
        if self.split_frame is None:
            return
        frame = self.split_frame
        wanted = self.query_one("#ds-class", Select).value
        mask = np.ones(len(frame), dtype=bool)
        if wanted in ("real", "fake"):
            mask &= frame["target"].to_numpy() == (1 if wanted == "fake" else 0)
        search = self.query_one("#ds-search", Input).value.strip().lower()
        if search:
            mask &= frame["img_name"].str.lower().str.contains(search, regex=False).to_numpy()
        table = self.query_one("#ds-images", FrameTable)
        table.set_frame(frame[mask], keep_index=table.index_at(table.cursor_row))
        table.border_subtitle = f"{int(mask.sum()):,} of {len(frame):,}" + (" (reading the rest…)" if partial else "")

    @on(FrameTable.RowHighlighted, "#ds-images")
    def _image(self, event: FrameTable.RowHighlighted) -> None:
        if self.split_frame is None or event.index is None or self.split_folder is None:
            return
        self.query_one("#ds-pair-preview").display = False
        row = self.split_frame.loc[event.index]
        name = str(row["img_name"])
        caption = Text.assemble((printable(name), "bold"), "\n", f"label {LABELS.get(int(row['target']), '?')}")
        self.query_one("#ds-preview", ImagePreview).show(self.split_folder / name, caption, [])

    @on(FrameTable.RowHighlighted, "#ds-issues")
    def _issue(self, event: FrameTable.RowHighlighted) -> None:
        """The whole message of the highlighted problem (the column is cut to the screen's width)."""
        message = event.table.value_at(event.row, "message")
        if message is not None:
            self.query_one("#issue-detail", Static).update(plain_text(message, "red", multiline=True))
