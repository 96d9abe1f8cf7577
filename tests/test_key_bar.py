"""The key bar at the bottom of every screen: what it shows, that a click runs the key, and its tooltips."""

from __future__ import annotations

from pathlib import Path

from conftest import install_fixture_runs
from pilot_helpers import make_app, rendered, wait_for_runs, wait_until

from ffdv_tui.screens.help import HelpScreen
from ffdv_tui.screens.new_run import NewRunScreen
from ffdv_tui.widgets.key_bar import PALETTE_BORDER, KeyBar

FIXTURE_NAMES = {"crashed", "finished", "stopped"}


async def test_it_shows_the_screens_keys_in_order_and_the_palette_at_the_right(tmp_path: Path) -> None:
    app = make_app(install_fixture_runs(tmp_path / "runs"))
    async with app.run_test(size=(200, 30)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        bar = app.main.query_one(KeyBar)
        assert bar.size.height == 1
        line = rendered(bar)
        assert line.startswith(" n New run  p Pause/Resume  s Stop ")
        assert " k Checkpoints  u Queue  space Mark  m Compare  / Filter  ? Keys  q Quit " in line
        assert line.rstrip().endswith(f"{PALETTE_BORDER}^p palette")
        assert len(line) == 200
        assert [key.key for key in bar.keys][-3:] == ["question_mark", "q", "ctrl+p"]


async def test_on_a_narrow_terminal_labels_shorten_wrap_and_keys_and_quit_stay(tmp_path: Path) -> None:
    """At 160 columns short labels fit one line; at 80 the bar wraps; at 60 the lowest-ranked keys go, ? and q stay."""
    app = make_app(install_fixture_runs(tmp_path / "runs"))
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        bar = app.main.query_one(KeyBar)
        line = rendered(bar)
        assert bar.size.height == 1
        assert "r Resume " in line and "Resume run" not in line  # the first word of the label, not a cut one
        assert "? Keys" in line and "q Quit" in line and line.rstrip().endswith("^p palette")
        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, lambda: bar.size.height == 2, 30, "the bar on two lines")
        lines = bar_lines(bar)
        assert "r Resume" in lines[0] and "? Keys" in lines[1] and "q Quit" in lines[1]
        await pilot.resize_terminal(60, 24)
        await wait_until(pilot, lambda: "k Checkpoints" not in "".join(bar_lines(bar)), 30, "the last key left out")
        text = "\n".join(bar_lines(bar))
        assert "? Keys" in text and "q Quit" in text and "^p palette" in text
        assert [key.key for key in bar.shown][-3:] == ["question_mark", "q", "ctrl+p"]
        for word in text.split():
            assert word in {"n", "New", "p", "Pause/Resume", "s", "Stop", "c", "Checkpoint", "r", "Resume", "v",
                            "Predictions", "d", "Dataset", "k", "Checkpoints", "u", "Queue", "space", "Mark", "m",
                            "Compare", "/", "Filter", "?", "Keys", "q", "Quit", "▏^p", "palette"}, word


def bar_lines(bar: KeyBar) -> list[str]:
    return ["".join(segment.text for segment in strip) for strip in bar.render_lines(bar.region.reset_offset)]


async def test_a_click_on_a_key_runs_it(tmp_path: Path) -> None:
    app = make_app(install_fixture_runs(tmp_path / "runs"))
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        line = rendered(app.main.query_one(KeyBar))
        await pilot.click(KeyBar, offset=(line.index("Keys"), 0))
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), 30, "the keys screen")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.main, 30, "the workbench")
        await pilot.click(KeyBar, offset=(2, 0))  # the "n" of "New run"
        await wait_until(pilot, lambda: isinstance(app.screen, NewRunScreen), 30, "the new-run form")


async def test_the_key_under_the_pointer_is_highlighted_and_gives_its_tooltip(tmp_path: Path) -> None:
    app = make_app(install_fixture_runs(tmp_path / "runs"))
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        bar = app.main.query_one(KeyBar)
        line = rendered(bar)
        stop = line.index("Stop")
        before = bar.render_lines(bar.region.reset_offset)[0]
        await pilot.hover(KeyBar, offset=(stop, 0))
        await wait_until(pilot, lambda: bar.tooltip is not None, 30, "the tooltip")
        assert "saves a checkpoint" in str(bar.tooltip)
        after = bar.render_lines(bar.region.reset_offset)[0]
        styles = {text: style for text, style, _ in after if text.strip() == "Stop"}
        old_styles = {text: style for text, style, _ in before if text.strip() == "Stop"}
        assert styles and old_styles and styles != old_styles  # highlighted
        await pilot.hover(KeyBar, offset=(len(line) - 3, 0))  # the palette
        await wait_until(pilot, lambda: "palette" in str(bar.tooltip).lower(), 30, "the palette's tooltip")


async def test_it_follows_the_screen_it_is_on(tmp_path: Path) -> None:
    """Each screen has its own bar with its own keys (the dataset screen's differ from the workbench's)."""
    app = make_app(install_fixture_runs(tmp_path / "runs"))
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_for_runs(pilot, app, FIXTURE_NAMES)
        workbench_keys = [key.key for key in app.main.query_one(KeyBar).keys]
        await pilot.press("d")
        await wait_until(pilot, lambda: app.screen is not app.main and app.screen.query(KeyBar)
                         and app.screen.query_one(KeyBar).keys, 30, "the dataset screen's keys")
        dataset_keys = [key.key for key in app.screen.query_one(KeyBar).keys]
        assert dataset_keys != workbench_keys and "escape" in dataset_keys
