"""What the app's Pilot tests share: one way to build the app, wait for a change, and read a widget.

Waits poll every 50 ms up to a generous timeout (a busy 2-core CI machine is slow, never wrong):
a test waits for the exact change its action causes, never for "a while".
"""

from __future__ import annotations

import html
import io
import re
import time
from pathlib import Path

from conftest import MODEL_NAMES, SAMPLE_DATA
from rich.console import Console
from textual.widgets import Static

from ffdv_tui.app import FfdvApp
from ffdv_tui.widgets.run_list import RunList

POLL_S = 0.05
TIMEOUT_S = 30.0


def make_app(runs: Path, data: Path | None = SAMPLE_DATA, **kwargs) -> FfdvApp:
    """The app on a runs folder, with a fixed list of model names (no timm at test time)."""
    return FfdvApp(runs_dir=runs, data_dir=data, model_names=lambda: MODEL_NAMES, **kwargs)


async def wait_for(pilot, condition, timeout: float = TIMEOUT_S) -> bool:
    """Pause until ``condition()`` holds; False after ``timeout`` seconds (the caller asserts what it wanted)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            met = condition()
        except Exception:
            met = False
        if met:
            return True
        if time.monotonic() > deadline:
            return False
        await pilot.pause(POLL_S)


async def wait_until(pilot, condition, timeout: float = TIMEOUT_S, what: str = "the condition") -> None:
    assert await wait_for(pilot, condition, timeout), f"timed out after {timeout}s waiting for {what}"


async def settle(pilot, seconds: float = 1.0) -> None:
    """For layout snapshots only: let throttled repaints and animations finish before the picture."""
    await pilot.pause(seconds)
    await pilot.wait_for_scheduled_animations()


def plain(renderable, width: int = 300) -> str:
    """What a rich renderable (Text, Table, Group) reads as on a wide terminal."""
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, legacy_windows=False).print(renderable)
    return out.getvalue()


def static_text(widget: Static) -> str:
    return plain(widget.content)


def rendered(widget) -> str:
    """The text a widget draws in its region now."""
    return "\n".join(strip.text for strip in widget.render_lines(widget.region.reset_offset)) if widget.region else ""


def screen_text(app) -> str:
    """Every character of the screen as the app draws it (its own SVG export, tags removed)."""
    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


def screen_lines(app) -> list[str]:
    """The screen as plain lines of text, as a terminal would show them (no styles)."""
    return ["".join(segment.text for segment in strip) for strip in app.screen._compositor.render_strips()]


async def wait_until_listed(pilot, app: FfdvApp) -> None:
    """The app has started: its first frame lists the runs (or says there are none)."""
    await wait_until(pilot, lambda: app.main.listed, TIMEOUT_S, "the app's first repaint")


async def wait_for_runs(pilot, app: FfdvApp, names: set[str], timeout: float = TIMEOUT_S) -> RunList:
    """The run list shows exactly ``names`` (and one of them is selected)."""
    run_list = app.query_one(RunList)
    await wait_until(pilot, lambda: set(run_list.names) == names and app.main.selected is not None, timeout,
                     f"the run list to show {sorted(names)}")
    return run_list


async def pick_run(pilot, app: FfdvApp, name: str) -> None:
    """Move the run list's highlight to ``name`` with the arrow keys (the list is newest first)."""
    run_list = app.query_one(RunList)
    await wait_until(pilot, lambda: name in run_list.names and app.main.selected is not None, 10, "the run list")
    run_list.focus()
    await wait_until(pilot, lambda: run_list.has_focus, 5, "the run list to take the focus")
    for _ in range(len(run_list.names) + 1):
        if app.main.selected == name:
            break
        names = run_list.names
        before = app.main.selected
        await pilot.press("down" if names.index(name) > names.index(before) else "up")
        await wait_until(pilot, lambda b=before: app.main.selected != b, 5, "the highlight to move")
    await wait_until(pilot, lambda: app.main.selected == name, 5, f"run {name} to be selected")
