"""The command palette as the map of the whole app: this screen's keys, then every other screen's, then the runs.

A command of another screen says which screen it belongs to and the key that opens that
screen; choosing it opens the screen (from the workbench) and says which key does the
rest there, so the palette teaches the keys instead of hiding them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from textual.app import SystemCommand
from textual.binding import Binding
from textual.markup import escape
from textual.screen import Screen

from engine.contract.text import printable
from ffdv_tui.screens.help import key_rows

if TYPE_CHECKING:
    from ffdv_tui.app import FfdvApp

TEXTUAL_DUPLICATES = {"Quit", "Keys"}  # Textual's own: a quit that skips the question, a help panel beside ``?``


def other_screens() -> list[tuple[str, str, str, type[Screen]]]:
    """(name, key on the workbench, the app's action that opens it, screen class) of each screen the workbench opens."""
    from ffdv_tui.screens.checkpoints import CheckpointsScreen
    from ffdv_tui.screens.dataset import DatasetScreen
    from ffdv_tui.screens.predictions import PredictionsScreen

    return [("predictions", "v", "predictions", PredictionsScreen), ("dataset", "d", "dataset", DatasetScreen),
            ("checkpoints", "k", "checkpoints", CheckpointsScreen)]


def _opener(app: FfdvApp, action: str, name: str, key: str, description: str) -> Callable[[], None]:
    def run() -> None:
        while len(app.screen_stack) > 1 and app.screen is not app.main:
            app.pop_screen()
        app.call_later(app.run_action, action)
        app.notify(f"{name} screen: press {key} for {description}", timeout=5, markup=False)

    return run


def palette_commands(app: FfdvApp, screen: Screen) -> Iterable[SystemCommand]:
    for row in key_rows(screen):
        if row.run is not None:
            help = f"key {row.keys}" + (f" · {row.help}" if row.help else "")
            yield SystemCommand(escape(row.description), escape(help), row.run)
    for name, opener_key, action, cls in other_screens():
        if isinstance(screen, cls):
            continue
        for binding in cls.BINDINGS:
            if not isinstance(binding, Binding) or binding.key == "escape" or not binding.show:
                continue
            key = app.get_key_display(binding)
            yield SystemCommand(escape(f"{binding.description} ({name})"),
                                escape(f"key {key} on the {name} screen, which {opener_key} opens from the workbench"),
                                _opener(app, action, name, key, binding.description))
    from ffdv_tui.runs import ordered

    for run in ordered(app.runs):
        run_name = printable(run.name, 200)
        yield SystemCommand(escape(f"Show run {run_name}"), escape(run.status),
                            lambda n=run.name: app.select_run(n))
