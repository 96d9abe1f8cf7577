"""The workbench's choice of runs: marks for a comparison, the runs list's filter (``/``) and sort.

A mixin of MainScreen (which owns the snapshots, the selection and the bindings), kept apart
so that the workbench's file stays about drawing runs and steering them.
"""

from __future__ import annotations

from rich.text import Text

from engine.contract.text import printable
from ffdv_tui.run_filter import SORTS, FilterError, shown_runs
from ffdv_tui.run_snapshot import RunSnapshot
from ffdv_tui.runs import ordered
from ffdv_tui.widgets.run_list import RunList


class RunChoice:
    """Needs ``runs`` (name -> snapshot), ``selected``, ``select_run`` and the RunList of a Screen."""

    runs: dict[str, RunSnapshot]
    selected: str | None
    marked: set[str]
    filter_text: str
    sort: str

    # ------------------------------------------------------------ marking, filtering and sorting the runs

    def shown(self, runs: list[RunSnapshot]) -> list[RunSnapshot]:
        """The runs the list shows: the filter's, in the chosen order (all of them while the filter is unreadable)."""
        try:
            return shown_runs(runs, self.filter_text, self.sort)
        except FilterError:
            return shown_runs(runs, "", self.sort)

    def relist(self) -> None:
        """Show the filter, sort and marks now (not at the next repaint): with 200 runs this is one rebuild."""
        runs = self.shown(ordered(self.runs))
        run_list = self.query_one(RunList)
        self.marked &= set(self.runs)
        run_list.marked = frozenset(self.marked)
        run_list.runs = tuple(runs)
        if runs and self.selected not in {r.name for r in runs}:
            self.select_run(runs[0].name)
        else:
            run_list.selected = self.selected
        self.show_list_title(len(runs))

    def show_list_title(self, shown: int) -> None:
        """The list's title: how many runs the filter shows, the order, the marks (set only when it changed)."""
        title = Text("runs")
        if self.filter_text:
            title.append(f" {shown}/{len(self.runs)} · {printable(self.filter_text, 40)}")
        if self.sort != SORTS[0]:
            title.append(f" · by {self.sort}")
        if self.marked:
            title.append(f" · {len(self.marked)} marked", style="magenta")
        run_list = self.query_one(RunList)
        if str(run_list.border_title) != title.plain:
            run_list.border_title = title

    def set_filter(self, text: str) -> str | None:
        """Filter the list by ``text``; returns why it cannot be read (the list is then left as it was)."""
        try:
            shown_runs([], text, self.sort)
        except FilterError as exc:
            return str(exc)
        self.filter_text = text.strip()
        self.relist()
        return None

    def action_mark(self) -> None:
        if self.selected is None:
            return
        self.marked ^= {self.selected}
        self.relist()

    def action_mark_shown(self) -> None:
        shown = {r.name for r in self.shown(ordered(self.runs))}
        self.marked = self.marked - shown if shown <= self.marked else self.marked | shown
        self.relist()

    def action_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.relist()
        self.notify(f"runs sorted by {self.sort}", timeout=2)

    def action_filter(self) -> None:
        from ffdv_tui.screens.filter import FilterScreen

        before = self.filter_text

        def done(text: str | None) -> None:
            if text is None:
                self.set_filter(before)  # escape: the filter as it was

        self.app.push_screen(FilterScreen(before, self.set_filter), done)

    def compared_runs(self) -> list[RunSnapshot]:
        """The marked runs in the list's order; one marked run is compared with the selected one."""
        names = set(self.marked)
        if len(names) == 1 and self.selected is not None:
            names.add(self.selected)
        return [r for r in ordered(self.runs) if r.name in names]
