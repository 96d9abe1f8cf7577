"""Keys are written once, in BINDINGS: the keys screen, the palette and the README's table follow them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO, install_fixture_runs
from pilot_helpers import make_app, pick_run, rendered, wait_until, wait_until_listed
from textual.binding import Binding

from ffdv_tui.app import FfdvApp
from ffdv_tui.screens.help import HelpScreen, dialog_rows
from ffdv_tui.screens.main import MainScreen


def own_bindings(cls: type) -> list[Binding]:
    """The bindings ffdv_tui's own classes declare for ``cls`` (Textual's defaults left out)."""
    found = []
    for klass in cls.__mro__:
        if klass.__module__.startswith("ffdv_tui") and "BINDINGS" in klass.__dict__:
            found += [b for b in klass.__dict__["BINDINGS"] if isinstance(b, Binding)]
    return found


async def open_keys(pilot, app: FfdvApp) -> str:
    screen = app.screen
    await pilot.press("question_mark")
    await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), 30, f"the keys screen over {screen}")
    text = rendered(app.screen.query_one("#keys"))
    await pilot.press("escape")
    await wait_until(pilot, lambda: app.screen is screen, 30, "the keys screen to close")
    return text


def assert_listed(app: FfdvApp, text: str, bindings: list[Binding], where: str) -> None:
    lines = text.splitlines()
    for binding in bindings:
        for key in binding.key.split(","):
            shown = app.get_key_display(Binding(key.strip(), binding.action))
            assert any(shown in line and binding.description in line for line in lines), \
                f"{where}: {key.strip()} ({binding.description}) is not on the keys screen:\n{text}"


@pytest.mark.parametrize("key", [None, "v", "d", "k", "u"], ids=["main", "predictions", "dataset", "checkpoints", "queue"])
async def test_the_keys_screen_lists_every_key_of_the_screen_it_opens_over(tmp_path: Path, key: str | None) -> None:
    runs = install_fixture_runs(tmp_path / "runs")
    app = make_app(runs, images="none")
    async with app.run_test(size=(140, 50)) as pilot:
        await pick_run(pilot, app, "finished")
        if key is not None:
            await pilot.press(key)
            await wait_until(pilot, lambda: not isinstance(app.screen, MainScreen), 30, f"the screen of {key}")
        screen = app.screen
        text = await open_keys(pilot, app)
        assert_listed(app, text, own_bindings(type(screen)), type(screen).__name__)
        assert_listed(app, text, own_bindings(FfdvApp), "everywhere")
        assert "ctrl+p" in text or "^p" in text  # the palette
        # the dialogs' keys, which cannot open this screen themselves (they take ? as text)
        for row in dialog_rows():
            assert any(row.keys in line and row.description in line for line in text.splitlines()), row


async def test_the_palette_offers_every_key_of_the_screen_below(tmp_path: Path) -> None:
    runs = install_fixture_runs(tmp_path / "runs")
    app = make_app(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until_listed(pilot, app)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for binding in own_bindings(MainScreen) + own_bindings(FfdvApp):
            if binding.action != "keys":
                assert binding.description in titles, binding


def readme_keys() -> set[str]:
    """The keys in the README's table of the workbench (the one right after its screen capture)."""
    text = (REPO / "README.md").read_text()
    table = text[text.index("| key | action |"):]
    table = table[: table.index("\n\n")]
    keys = set()
    for line in table.splitlines()[2:]:
        keys |= set(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return keys


def test_the_readme_keys_table_is_the_main_screens_bindings() -> None:
    list_keys = {"↑", "↓"}  # the run list's own movement
    documented = readme_keys()
    display = {"question_mark": "?", "slash": "/"}
    bound = {display.get(k.strip(), k.strip()) for b in own_bindings(MainScreen) + own_bindings(FfdvApp)
             for k in b.key.split(",")} | {FfdvApp.COMMAND_PALETTE_BINDING}
    assert documented - list_keys == bound, (
        f"README lists {sorted(documented - list_keys - bound)} that no binding has, "
        f"and misses {sorted(bound - documented)}")


async def test_the_keys_screen_lists_every_key_of_the_matrix_screen(tmp_path: Path) -> None:
    from test_tui_matrix import fake_matrix
    from textual.widgets import DataTable

    from ffdv_tui.screens.matrix import MatrixScreen

    folder = fake_matrix(tmp_path / "m", tmp_path)
    (tmp_path / "runs").mkdir()
    app = make_app(tmp_path / "runs", data=None, images="none")
    async with app.run_test(size=(140, 50)) as pilot:
        await wait_until_listed(pilot, app)
        app.push_screen(MatrixScreen(folder, "none"))
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixScreen)
                         and app.screen.query_one(DataTable).row_count == 3, 30, "the matrix screen")
        text = await open_keys(pilot, app)
        assert_listed(app, text, own_bindings(MatrixScreen), "MatrixScreen")


def test_the_keys_list_wraps_what_a_key_does_under_itself_within_the_width() -> None:
    from rich.console import Console

    from ffdv_tui.screens.help import KeyRow, keys_lines

    rows = [KeyRow("This screen", "s", "Stop", "Stop the selected run cleanly (it saves a checkpoint first)"),
            KeyRow("This screen", "ctrl+p", "Palette", "")]
    lines = [line.plain.rstrip() for line in keys_lines(rows, 40, Console())]
    assert lines[0] == "This screen"
    assert lines[1].startswith("s       Stop: Stop the selected")
    assert all(line.startswith(" " * 8) for line in lines[2:-2]) and len(lines) > 4
    assert lines[-2] == "ctrl+p  Palette" and lines[-1] == ""
    assert max(len(line) for line in lines) <= 40
