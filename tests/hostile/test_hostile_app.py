"""The app stays up on hostile files, and shows their text as text (issue 9, sections 2 and 3).

Each test writes the input an attacker or an unlucky user would leave behind (markup in a
label-file header or a run folder's name, damaged checkpoint sidecars, an events log that is
a folder, escape sequences in image names, run names, log lines and event messages), drives
the app to the screen that shows it, and checks that the app is still running, that the
problem is shown as literal text, and that nothing of it reaches the terminal as an escape
sequence (the screen as the app draws it, read from its own export).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import MODEL_NAMES, SAMPLE_DATA, install_fixture_runs
from pilot_helpers import screen_text, wait_until

from ffdv_tui.app import FfdvApp

TITLE = "\x1b]0;PWNED\x07"  # sets the terminal's title
CLEAR = "\x1b[2J"  # clears the screen
LINK = "\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07"  # an OSC 8 hyperlink
RAW = ("\x1b", "\x07", "\x9b")  # ESC, BEL, CSI: none may reach the terminal from data


def app_on(runs: Path, data: Path | None = SAMPLE_DATA, images: str = "none") -> FfdvApp:
    return FfdvApp(runs_dir=runs, data_dir=data, images=images, model_names=lambda: MODEL_NAMES)


def assert_no_raw_escapes(app: FfdvApp) -> str:
    text = screen_text(app)
    for raw in RAW:
        assert raw not in text, f"{raw!r} reached the screen"
    return text


async def shows(pilot, app: FfdvApp, *needles: str, timeout: float = 30) -> str:
    """Wait until every needle is on screen (as the terminal would get it); the app must still be running."""
    await wait_until(pilot, lambda: app.is_running and all(n in screen_text(app) for n in needles), timeout,
                     f"{needles} on screen")
    return assert_no_raw_escapes(app)


def sidecar_run(runs: Path, name: str, sidecars: dict[str, dict]) -> None:
    """A run folder with checkpoints whose sidecars say what ``sidecars`` says."""
    folder = runs / name / "checkpoints"
    folder.mkdir(parents=True)
    (runs / name / "config.toml").write_text("")
    for stem, data in sidecars.items():
        (folder / f"{stem}.safetensors").write_bytes(b"\0" * 64)
        (folder / f"{stem}.json").write_text(json.dumps(data))


# ---------------------------------------------------------------- markup in names and messages never crashes


async def test_a_label_file_header_with_markup_is_shown_in_the_form(tmp_path: Path) -> None:
    data = Path(shutil.copytree(SAMPLE_DATA, tmp_path / "data"))
    label = data / "trainset_label.txt"
    label.write_text(label.read_text().replace("img_name,target", "img_name[/],target", 1))
    (tmp_path / "runs").mkdir()
    app = app_on(tmp_path / "runs", data)
    async with app.run_test(size=(200, 50)) as pilot:
        await shows(pilot, app, "No runs in")
        await pilot.press("n")
        await wait_until(pilot, lambda: "img_name[/],target" in str(app.screen.query_one("#data-why").tooltip), 30,
                         "the label file's problem, whole, in the tooltip")
        assert "trainset_label.txt" in str(app.screen.query_one("#data-why").render())  # its first line, cut to fit
        assert_no_raw_escapes(app)
        assert app.is_running


async def test_a_run_folder_named_with_markup_is_listed_and_in_the_palette(tmp_path: Path) -> None:
    runs = install_fixture_runs(tmp_path / "runs")
    hostile = "bad[link=http:evil]x"
    shutil.copytree(runs / "finished", runs / hostile)
    app = app_on(runs)
    async with app.run_test(size=(160, 40)) as pilot:
        await shows(pilot, app, "bad[link=http")  # the run list cuts long names
        await pilot.press("ctrl+p")
        await pilot.press(*"bad")
        await shows(pilot, app, f"Show run {hostile}")
        assert app.is_running


@pytest.mark.parametrize(("field", "value"), [("metrics", "x"), ("epoch", "x"), ("step", "x"), ("model", 5),
                                              ("img_size", "x"), ("config", "x"), ("epoch", [1])])
async def test_a_sidecar_with_a_wrong_type_is_listed_with_its_problem(tmp_path: Path, field: str, value) -> None:
    runs = tmp_path / "runs"
    good = {"epoch": 1, "step": 10, "metrics": {"auc": 0.75}, "model": "resnet10t", "img_size": 64}
    sidecar_run(runs, "damaged", {"epoch-001": {**good, field: value}, "epoch-002": {**good, "epoch": 2}})
    app = app_on(runs)
    async with app.run_test(size=(160, 40)) as pilot:
        await shows(pilot, app, "damaged")
        await pilot.press("k")
        await shows(pilot, app, "damaged sidecar", "0.7500")
        assert app.is_running


async def test_an_events_log_that_is_a_folder_is_listed_with_its_problem(tmp_path: Path) -> None:
    runs = install_fixture_runs(tmp_path / "runs")
    broken = runs / "broken"
    broken.mkdir()
    (broken / "config.toml").write_text((runs / "finished" / "config.toml").read_text())
    (broken / "events.jsonl").mkdir()
    app = app_on(runs)
    async with app.run_test(size=(160, 40)) as pilot:
        await shows(pilot, app, "broken", "finished")
        app.select_run("broken")
        await shows(pilot, app, "damaged", "events.jsonl")
        assert app.is_running


# ---------------------------------------------------------------- escape sequences are shown, never sent


async def test_image_names_with_escape_sequences_are_shown_escaped_in_the_dataset_table(tmp_path: Path) -> None:
    data = Path(shutil.copytree(SAMPLE_DATA, tmp_path / "data"))
    label = data / "trainset_label.txt"
    lines = label.read_text().splitlines()
    lines[1:1] = [f"a{TITLE}.jpg,1", f"b{CLEAR}.jpg,0", f"c{LINK}.jpg,1"]
    label.write_text("\n".join(lines) + "\n")
    (tmp_path / "runs").mkdir()
    app = app_on(tmp_path / "runs", data)
    async with app.run_test(size=(160, 48)) as pilot:
        await shows(pilot, app, "No runs in")
        await pilot.press("d")
        await shows(pilot, app, "a\\x1b]0;PWNED\\x07.jpg", "b\\x1b[2J.jpg", "c\\x1b]8;;http://evil")


async def test_image_names_with_escape_sequences_are_shown_escaped_in_the_predictions(tmp_path: Path) -> None:
    from ffdv_tui.screens.predictions import PredictionSource, PredictionsScreen

    csv = tmp_path / "evaluation.csv"
    pd.DataFrame({"img_name": [f"a{TITLE}.jpg", f"b{CLEAR}.jpg"], "target": [1, 0], "score": [0.9, 0.2]}).to_csv(
        csv, index=False)
    (tmp_path / "runs").mkdir()
    app = app_on(tmp_path / "runs", images="halfcell")
    async with app.run_test(size=(160, 40)) as pilot:
        await shows(pilot, app, "No runs in")
        app.push_screen(PredictionsScreen(PredictionSource("an evaluation", {0: csv}, tmp_path)))
        await shows(pilot, app, "a\\x1b]0;PWNED\\x07.jpg", "b\\x1b[2J.jpg")  # the table and the preview's caption


async def test_run_names_log_lines_and_event_messages_with_escapes_are_shown_escaped(tmp_path: Path) -> None:
    runs = install_fixture_runs(tmp_path / "runs")
    name = f"evil{CLEAR}"
    run = Path(shutil.copytree(runs / "crashed", runs / name))
    with open(run / "engine.log", "a") as log:
        log.write(f"a log line {TITLE} {LINK}\n")
    with open(run / "events.jsonl", "a") as events:
        events.write(json.dumps({"v": 1, "seq": 10_000, "time": 1795916400.0, "kind": "warning",
                                 "message": f"careful [/] {TITLE}"}) + "\n")
    app = app_on(runs)
    async with app.run_test(size=(160, 48)) as pilot:
        await shows(pilot, app, "evil\\x1b[2J")
        app.select_run(name)
        await shows(pilot, app, "a log line \\x1b]0;PWNED\\x07", "careful [/] \\x1b]0;PWNED")
        assert app.is_running
