"""The sidebar: every run in the runs folder with its status mark, epoch and best metric."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from engine.contract.fmt import fmt_metric
from engine.contract.status import RunStatus
from engine.contract.text import printable
from ffdv_tui.run_snapshot import RunSnapshot

# Status -> (mark, style). Marks are plain Unicode that every terminal font has.
STATUS_MARKS = {
    RunStatus.QUEUED: ("◦", "cyan"),
    RunStatus.CANCELLED: ("–", "dim"),
    RunStatus.STARTING: ("…", "dim"),
    RunStatus.RUNNING: ("▶", "green"),
    RunStatus.PAUSED: ("‖", "yellow"),
    RunStatus.FINISHED: ("✓", "green"),
    RunStatus.STOPPED: ("■", "yellow"),
    RunStatus.FAILED: ("!", "bold red"),
    RunStatus.CRASHED: ("✗", "bold red"),
    RunStatus.UNRESPONSIVE: ("?", "red"),
}


def status_text(status: str) -> Text:
    mark, style = STATUS_MARKS.get(status, ("·", ""))
    return Text(f"{mark} {status}", style=style)


def run_prompt(run: RunSnapshot) -> Text:
    """Two lines: mark and name; epoch and best metric (or what is wrong with the folder).

    Lines too long for the list end in "…" where they are drawn (the list's text-overflow), so a
    prompt does not depend on the list's width, which is not known before the first layout.
    """
    mark, style = STATUS_MARKS.get(run.status, ("·", ""))
    detail = f"{run.epoch}/{run.epochs}" if run.epochs else run.status
    if run.best_value is not None:
        detail += f" · {printable(run.best_metric, 40)} {fmt_metric(run.best_value)}"
    if run.problem:
        mark, style, detail = "!", "bold red", "damaged folder"
    text = Text()
    text.append(f"{mark} ", style=style)
    text.append(printable(run.name, 400), style="bold")
    text.append("\n  " + detail, style="dim")
    return text


class RunList(OptionList):
    """Runs, newest first; moving the highlight selects a run.

    The movement keys ask for a run (RunSelected) without moving the highlight: the screen
    moves it (``selected``) in the same handler that shows the run, so the list and the run
    are drawn in one frame. Moved here first, the highlight was drawn a frame before the run.
    """

    runs: reactive[tuple[RunSnapshot, ...]] = reactive((), layout=False, repaint=False, init=False)
    selected: reactive[str | None] = reactive(None, layout=False, repaint=False, init=False)
    marked: reactive[frozenset[str]] = reactive(frozenset(), layout=False, repaint=False, init=False)

    @dataclass
    class RunSelected(Message):
        name: str

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._names: list[str] = []
        self._prompts: list[str] = []
        self._made: dict[RunSnapshot, Text] = {}  # prompts by snapshot: most runs are unchanged
        self._asked: int | None = None  # the index last asked for, until the screen moves the highlight there

    @property
    def names(self) -> list[str]:
        """The runs listed, top to bottom."""
        return list(self._names)

    def watch_runs(self, runs: tuple[RunSnapshot, ...]) -> None:
        """Rebuild the list only when something shown changed; keep the highlight on the selected run."""
        made = {r: self._made.get(r) or run_prompt(r) for r in runs}
        self._made = made
        marked = self.marked
        prompts = [Text.assemble(("● ", "bold magenta"), made[r]) if r.name in marked else made[r] for r in runs]
        names = [r.name for r in runs]
        plain = [p.plain + r.status for p, r in zip(prompts, runs)]
        if names == self._names and plain == self._prompts:
            return
        if names == self._names:
            for index, prompt in enumerate(prompts):
                if plain[index] != self._prompts[index]:
                    self.replace_option_prompt_at_index(index, prompt)
        else:
            with self.prevent(OptionList.OptionHighlighted):
                self.set_options([Option(p, id=n) for p, n in zip(prompts, names)])
        self._names, self._prompts = names, plain
        self.watch_selected(self.selected)  # and forget an index asked for: the indices changed

    def watch_marked(self, marked: frozenset[str]) -> None:
        self.watch_runs(self.runs)  # a mark is drawn before the run's status mark

    def watch_selected(self, name: str | None) -> None:
        self._asked = None
        if name in self._names and self.highlighted != self._names.index(name):
            with self.prevent(OptionList.OptionHighlighted):
                self.highlighted = self._names.index(name)

    # ------------------------------------------------------------ the movement keys (OptionList's bindings)

    def _ask(self, index: int) -> None:
        if not self._names:
            return
        name = self._names[index]
        if name == self.selected:
            self._asked = None
            return
        self._asked = index
        self.post_message(self.RunSelected(name))

    def _from(self) -> int:
        """Where a key moves from: the run asked for last (keys that came before the screen moved), else the highlight."""
        return self._asked if self._asked is not None else (self.highlighted or 0)

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height // 2)  # two lines a run

    def action_cursor_down(self) -> None:
        if self._names:
            self._ask((self._from() + 1) % len(self._names))

    def action_cursor_up(self) -> None:
        if self._names:
            self._ask((self._from() - 1) % len(self._names))

    def action_first(self) -> None:
        self._ask(0)

    def action_last(self) -> None:
        self._ask(len(self._names) - 1)

    def action_page_down(self) -> None:
        self._ask(min(self._from() + self._page(), len(self._names) - 1))

    def action_page_up(self) -> None:
        self._ask(max(self._from() - self._page(), 0))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.RunSelected(event.option.id))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.RunSelected(event.option.id))
