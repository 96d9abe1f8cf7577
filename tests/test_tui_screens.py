"""The predictions, dataset and checkpoints screens driven with Pilot, checked against independent computations.

Every number the screens show is computed here again (pandas, sklearn, the files the engine
wrote), and the screens are driven with their keys: v, d and k on the main screen, f, e, t and
/ on the predictions screen, x on the dataset screen, e, s, f, m and o on the checkpoints screen.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FAST_TRAIN, MODEL_NAMES, SAMPLE_DATA, install_fixture_runs
from pilot_helpers import make_app, pick_run, static_text, wait_for, wait_until, wait_until_listed
from textual.widgets import Input, Select, Static

from ffdv_tui.app import FfdvApp
from ffdv_tui.predictions import FILTERS
from ffdv_tui.screens.checkpoints import CheckpointsScreen
from ffdv_tui.screens.dataset import DatasetScreen
from ffdv_tui.screens.job import JobScreen
from ffdv_tui.screens.new_run import NewRunScreen
from ffdv_tui.screens.predictions import PredictionSource, PredictionsScreen
from ffdv_tui.widgets.frame_table import FrameTable
from ffdv_tui.widgets.image_preview import ImagePreview

LABEL = {0: "real", 1: "fake"}


# ---------------------------------------------------------------- helpers


def append_line(path: Path, line: str) -> None:
    with open(path, "a") as fh:
        fh.write(line + "\n")


def column(table: FrameTable, key: str) -> list:
    return [table.value_at(row, key) for row in range(table.row_count)]


def select_label(select: Select) -> str:
    """What the Select shows as its current choice."""
    return static_text(select.query_one("#label", Static)).strip()


async def choose(pilot, select: Select, value) -> None:
    """Pick an option of a Select with the keyboard: open it (enter), go to the top, down k times, enter."""
    select.focus()
    await wait_until(pilot, lambda: select.has_focus, 30, "the select to take the focus")
    for downs in range(20):
        if select.value == value:
            return
        await pilot.press("enter")
        await wait_until(pilot, lambda: select.expanded, 30, "the options to open")
        await pilot.press("home", *["down"] * downs, "enter")
        await wait_until(pilot, lambda: not select.expanded, 30, "the options to close")
    assert select.value == value, f"{value!r} is not an option"


async def focus_with_tab(pilot, widget, presses: int = 12) -> None:
    for _ in range(presses):
        if widget.has_focus:
            return
        await pilot.press("tab")
    assert widget.has_focus, f"tab never reached {widget}"


async def type_into(pilot, text: str) -> None:
    for char in text:
        await pilot.press(char)


# ---------------------------------------------------------------- predictions: independent answers


def fakes(frame: pd.DataFrame, threshold: float) -> pd.Series:
    return frame["score"] > threshold


def expected_names(frame: pd.DataFrame, threshold: float, filter_name: str) -> set[str]:
    called_fake = fakes(frame, threshold)
    target = frame["target"]
    masks = {
        "all": pd.Series(True, index=frame.index),
        "misclassified": (target >= 0) & (called_fake != (target == 1)),
        "fp": (target == 0) & called_fake,
        "fn": (target == 1) & ~called_fake,
        "uncertain": (frame["score"] - threshold).abs() < 0.1,
    }
    return set(frame.loc[masks[filter_name], "img_name"])


def confusion(frame: pd.DataFrame, threshold: float) -> dict[str, int]:
    called_fake, target = fakes(frame, threshold), frame["target"]
    return {"TN": int(((target == 0) & ~called_fake).sum()), "FP": int(((target == 0) & called_fake).sum()),
            "FN": int(((target == 1) & ~called_fake).sum()), "TP": int(((target == 1) & called_fake).sum())}


def read_predictions(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"img_name": str})


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return install_fixture_runs(tmp_path / "runs")


async def open_predictions(pilot, app: FfdvApp, run: str = "finished") -> PredictionsScreen:
    await pick_run(pilot, app, run)
    await pilot.press("v")
    await wait_until(pilot, lambda: isinstance(app.screen, PredictionsScreen), 30, "the predictions screen")
    screen = app.screen
    await wait_until(pilot, lambda: screen.table_data is not None and screen.query_one(FrameTable).row_count > 0,
                     20, "the predictions to load")
    return screen


def shown(screen: PredictionsScreen) -> list[str]:
    return [str(n) for n in column(screen.query_one(FrameTable), "img_name")]


async def back_to_table(pilot, screen: PredictionsScreen) -> None:
    await focus_with_tab(pilot, screen.query_one(FrameTable))


async def show_filter(pilot, screen: PredictionsScreen, frame: pd.DataFrame, threshold: float, key: str) -> None:
    """Press f until the filter is ``key``; wait for its rows."""
    select = screen.query_one("#filter", Select)
    for _ in range(len(FILTERS)):
        if select.value == key:
            break
        before = select.value
        await pilot.press("f")
        await wait_until(pilot, lambda b=before: select.value != b, 30, "the next filter")
    assert select.value == key
    want = expected_names(frame, threshold, key)
    await wait_for(pilot, lambda: set(shown(screen)) == want, 5)


# ---------------------------------------------------------------- every screen


async def test_the_header_names_the_open_screen_while_the_selected_run_changes(runs: Path) -> None:
    """A training run writes events all the time; the main screen below must not take over the header."""
    app = make_app(runs, images="none")
    headers = {}
    async with app.run_test(size=(120, 36)) as pilot:
        await pick_run(pilot, app, "finished")
        await wait_until(pilot, lambda: app.main.painted, 30, "the main screen's repaint")
        for seq, (key, title) in enumerate([("v", "predictions · finished"), ("k", "checkpoints · "),
                                            ("d", "dataset · ")], start=63):
            await pilot.press(key)
            await wait_until(pilot, lambda t=title: app.sub_title.startswith(t), 30, f"the header {title!r}")
            append_line(runs / "finished" / "events.jsonl",  # what a live engine does every few seconds
                        json.dumps({"v": 1, "seq": seq, "time": 1795916334.0 + seq, "kind": "heartbeat",
                                    "device": "cpu", "memory_used": 1, "memory_total": 2, "utilization": None}))
            await wait_until(pilot, lambda: (beat := app.runs["finished"].heartbeat) is not None and beat.memory_used == 1, 10,
                             "the heartbeat to be read")
            await wait_until(pilot, lambda: app.main.painted, 30, "the main screen's repaint below")
            headers[title] = app.sub_title
            await pilot.press("escape")
            await wait_until(pilot, lambda: len(app.screen_stack) == 1, 30, "the main screen")
    assert all(header.startswith(title) for title, header in headers.items()), headers


# ---------------------------------------------------------------- predictions screen


async def test_every_filter_shows_exactly_its_rows_at_two_thresholds(runs: Path) -> None:
    frame = read_predictions(runs / "finished" / "predictions" / "epoch-003.csv")
    app = make_app(runs, images="none")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_predictions(pilot, app)
        table = screen.query_one(FrameTable)
        for threshold in (0.5, 0.35):
            if threshold != 0.5:
                await focus_with_tab(pilot, screen.query_one("#threshold", Input))
                await type_into(pilot, str(threshold))
                await back_to_table(pilot, screen)
            for key in ("misclassified", "fp", "fn", "uncertain", "all"):
                await show_filter(pilot, screen, frame, threshold, key)
                names = shown(screen)
                want = expected_names(frame, threshold, key)
                assert len(names) == len(set(names)), (threshold, key, "a row is shown twice")
                assert set(names) == want, (threshold, key, sorted(set(names) ^ want))
                by_name = frame.set_index("img_name")
                for row, name in enumerate(names):  # the ✓/✗ and "called" columns agree with the threshold
                    called = int(by_name.loc[name, "score"] > threshold)
                    assert table.value_at(row, "pred") == called, (threshold, key, name)
                    assert bool(table.value_at(row, "correct")) == (called == by_name.loc[name, "target"])


async def test_filter_label_shows_the_count_of_its_rows(runs: Path) -> None:
    frame = read_predictions(runs / "finished" / "predictions" / "epoch-003.csv")
    app = make_app(runs, images="none")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_predictions(pilot, app)
        select = screen.query_one("#filter", Select)
        label_on_open = select_label(select)
        for key in ("misclassified", "fp", "fn", "uncertain", "all"):
            await show_filter(pilot, screen, frame, 0.5, key)
            assert select_label(select) == f"{FILTERS[key]} ({len(expected_names(frame, 0.5, key)):,})"
        # The label right after opening, before any filter was chosen, counts its rows too.
        assert label_on_open == f"all ({len(frame):,})"


async def test_threshold_changes_metrics_and_rows(runs: Path) -> None:
    frame = read_predictions(runs / "finished" / "predictions" / "epoch-003.csv")
    app = make_app(runs, images="none")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_predictions(pilot, app)
        metrics = screen.query_one("#pred-metrics", Static)
        await show_filter(pilot, screen, frame, 0.5, "misclassified")
        for threshold in ("0.7", "0.255"):
            await focus_with_tab(pilot, screen.query_one("#threshold", Input))
            await type_into(pilot, threshold)  # the field's text is selected on focus: typing replaces it
            value = float(threshold)
            want = expected_names(frame, value, "misclassified")
            c = confusion(frame, value)
            await wait_until(pilot, lambda v=value: f"at threshold {v:.3f}" in static_text(metrics), 30, "the metrics")
            await wait_until(pilot, lambda w=want: set(shown(screen)) == w, 30, "the rows")
            text = static_text(metrics)
            assert f"{len(want):,} shown of {len(frame):,}" in text, text
            assert f"TN {c['TN']:,} FP {c['FP']:,} FN {c['FN']:,} TP {c['TP']:,}" in text, (c, text)
            accuracy = (c["TN"] + c["TP"]) / len(frame)
            assert f"acc {accuracy:.4f}" in text
            await back_to_table(pilot, screen)
        await focus_with_tab(pilot, screen.query_one("#threshold", Input))
        await type_into(pilot, "1.5")
        await wait_until(pilot, lambda: "between 0 and 1" in static_text(metrics), 30, "the threshold error")


async def test_t_and_slash_keys_focus_the_threshold_and_the_search(runs: Path) -> None:
    """The footer offers t (threshold) and / (search); pressing them must focus those fields."""
    app = make_app(runs, images="none")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_predictions(pilot, app)
        await pilot.press("t")
        await wait_until(pilot, lambda: screen.query_one("#threshold", Input).has_focus, 30, "the threshold's focus")
        await back_to_table(pilot, screen)
        await pilot.press("slash")
        await wait_until(pilot, lambda: screen.query_one("#search", Input).has_focus, 30, "the search's focus")


async def test_eer_key_sets_the_threshold_where_fpr_meets_fnr(runs: Path) -> None:
    from sklearn.metrics import roc_curve

    frame = read_predictions(runs / "finished" / "predictions" / "epoch-003.csv")
    app = make_app(runs, images="none")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_predictions(pilot, app)
        field = screen.query_one("#threshold", Input)
        await pilot.press("e")
        await wait_until(pilot, lambda: field.value != "0.5", 30, "the threshold to move")
        threshold = float(field.value)
        await wait_until(pilot, lambda: f"at threshold {threshold:.3f}" in static_text(screen.query_one("#pred-metrics")),
                         5, "the metrics at the EER")
    y, s = frame["target"].to_numpy(), frame["score"].to_numpy()
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    best_gap = float(np.min(np.abs(fpr - (1 - tpr))))
    c = confusion(frame, threshold)
    app_fpr, app_fnr = c["FP"] / (c["FP"] + c["TN"]), c["FN"] / (c["FN"] + c["TP"])
    print(f"\nEER threshold {threshold}: FPR {app_fpr:.4f} FNR {app_fnr:.4f}; best |FPR-FNR| {best_gap:.4f}")
    assert abs(app_fpr - app_fnr) <= best_gap + 1e-9


async def test_epoch_picker_switches_to_that_epochs_file(runs: Path) -> None:
    files = {e: read_predictions(runs / "finished" / "predictions" / f"epoch-00{e}.csv") for e in (1, 2, 3)}
    app = make_app(runs, images="none")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_predictions(pilot, app)
        table = screen.query_one(FrameTable)
        epoch = screen.query_one("#epoch", Select)
        assert epoch.value == 3

        def scores() -> dict[str, float]:
            return dict(zip(map(str, column(table, "img_name")), map(float, column(table, "score"))))

        def of(e: int) -> dict[str, float]:
            return dict(zip(files[e]["img_name"], files[e]["score"].astype(float)))

        assert scores() == of(3)
        for e in (1, 2):
            await choose(pilot, epoch, e)
            await wait_until(pilot, lambda e=e: scores() == of(e), 30, f"epoch {e}'s scores")
            c = confusion(files[e], 0.5)
            text = static_text(screen.query_one("#pred-metrics"))
            assert f"TN {c['TN']:,} FP {c['FP']:,} FN {c['FN']:,} TP {c['TP']:,}" in text, (e, text)


async def test_sorting_orders_the_rows(runs: Path) -> None:
    frame = read_predictions(runs / "finished" / "predictions" / "epoch-003.csv")
    app = make_app(runs, images="none")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_predictions(pilot, app)
        table = screen.query_one(FrameTable)
        sort = screen.query_one("#sort", Select)

        def values(key: str) -> list:
            return column(table, key)

        scores = [float(v) for v in values("score")]
        assert scores == sorted(frame["score"], reverse=True)  # the default: score, high first
        await choose(pilot, sort, "name")
        await wait_until(pilot, lambda: [str(n) for n in values("img_name")] == sorted(frame["img_name"]), 5,
                         "rows by name")
        await choose(pilot, sort, "wrong")

        def wrongness() -> list[float]:
            return [abs(float(s) - int(t)) for s, t in zip(values("score"), values("target"))]

        want = sorted((abs(s - t) for s, t in zip(frame["score"], frame["target"])), reverse=True)
        await wait_until(pilot, lambda: wrongness() == want, 30, "rows most wrong first")
        assert len(values("img_name")) == len(frame)
        await choose(pilot, sort, "score")
        await wait_until(pilot, lambda: [float(v) for v in values("score")] == sorted(frame["score"], reverse=True),
                         5, "rows by score again")


async def test_search_keeps_names_containing_the_text(runs: Path) -> None:
    frame = read_predictions(runs / "finished" / "predictions" / "epoch-003.csv")
    app = make_app(runs, images="none")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_predictions(pilot, app)
        await focus_with_tab(pilot, screen.query_one("#search", Input))
        for text in ("a", "a1", "a1f"):
            await pilot.press(text[-1])
            want = {n for n in frame["img_name"] if text in n.lower()}
            assert 0 < len(want) < len(frame) or text == "a1f"
            await wait_until(pilot, lambda w=want: set(shown(screen)) == w, 30, f"names containing {text!r}")
            assert f"{len(want):,} shown" in static_text(screen.query_one("#pred-metrics"))
        await pilot.press("backspace", "backspace", "backspace")
        await wait_until(pilot, lambda: len(shown(screen)) == len(frame), 30, "every row again")
        await pilot.press("A", "1")  # upper case finds the same names
        await wait_until(pilot, lambda: set(shown(screen)) == {n for n in frame["img_name"] if "a1" in n}, 5,
                         "case-insensitive search")


async def test_moving_the_cursor_shows_the_image_its_label_and_score(runs: Path) -> None:
    frame = read_predictions(runs / "finished" / "predictions" / "epoch-003.csv").set_index("img_name")
    app = make_app(runs, images="halfcell")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_predictions(pilot, app)
        table = screen.query_one(FrameTable)
        preview = screen.query_one(ImagePreview)
        picture = preview.query_one("#picture")
        caption = preview.query_one("#caption", Static)
        for step in range(3):
            if step:
                await pilot.press("down")
            assert table.cursor_row == step
            name = str(table.value_at(step, "img_name"))
            await wait_until(pilot, lambda n=name: n in static_text(caption) and picture.image is not None
                             and preview._path == SAMPLE_DATA / "valset" / n, 30, f"the picture of {name}")
            text = static_text(caption)
            assert f"true {LABEL[int(frame.loc[name, 'target'])]}" in text, text
            assert f"fake score {frame.loc[name, 'score']:.4f}" in text, text
            assert picture.image.size[0] > 0
        # the score over the three epochs follows once the history is read
        await wait_until(pilot, lambda: "score over epochs 1–3" in static_text(preview.query_one("#history-caption")),
                         10, "the score history")


async def test_an_image_that_cannot_be_found_shows_why(runs: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    valset = pd.read_csv(SAMPLE_DATA / "valset_label.txt")
    present, gone = valset["img_name"][0], valset["img_name"][1]
    shutil.copy(SAMPLE_DATA / "valset" / present, images / present)
    csv = tmp_path / "evaluation.csv"
    pd.DataFrame({"img_name": [gone, present], "target": [1, 0], "score": [0.9, 0.1]}).to_csv(csv, index=False)
    app = make_app(runs, images="halfcell")
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until_listed(pilot, app)
        app.push_screen(PredictionsScreen(PredictionSource("an evaluation", {0: csv}, images)))
        await wait_until(pilot, lambda: isinstance(app.screen, PredictionsScreen), 30, "the screen")
        screen = app.screen
        await wait_until(pilot, lambda: screen.query_one(FrameTable).row_count == 2, 30, "the two rows")
        caption = screen.query_one("#caption", Static)
        picture = screen.query_one("#picture")
        await wait_until(pilot, lambda: "file not found" in static_text(caption), 30, "the reason")
        assert gone in static_text(caption) and picture.image is None
        assert screen.query_one("#epoch", Select).value == 0 and select_label(screen.query_one("#epoch")) == "evaluation"
        await pilot.press("down")
        await wait_until(pilot, lambda: picture.image is not None and present in static_text(caption), 10,
                         "the picture that is there")
        assert "not found" not in static_text(caption)


async def test_a_run_without_predictions_says_so(runs: Path) -> None:
    shutil.rmtree(runs / "stopped" / "predictions")
    app = make_app(runs, images="none")
    async with app.run_test(size=(120, 36)) as pilot:
        await pick_run(pilot, app, "stopped")
        await pilot.press("v")
        await wait_until(pilot, lambda: isinstance(app.screen, PredictionsScreen), 30, "the screen")
        metrics = app.screen.query_one("#pred-metrics", Static)
        await wait_until(pilot, lambda: "No predictions yet" in static_text(metrics), 30, "the message")
        assert app.screen.query_one(FrameTable).row_count == 0
        await pilot.press("f", "e")  # nothing to filter, no EER: no crash
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, PredictionsScreen), 30, "the main screen")


async def test_150000_predictions_open_filter_and_sort(runs: Path) -> None:
    n = 150_000
    rng = np.random.default_rng(7)
    target = rng.integers(0, 2, n)
    score = np.round(np.clip(rng.normal(0.35 + 0.3 * target, 0.2), 0, 1), 6)
    frame = pd.DataFrame({"img_name": [f"{i:07x}.jpg" for i in rng.permutation(n)], "target": target,
                          "score": score, "pred": (score > 0.5).astype(int)})
    big = runs / "big"
    shutil.copytree(runs / "finished", big)
    shutil.rmtree(big / "predictions")
    (big / "predictions").mkdir()
    frame.to_csv(big / "predictions" / "epoch-001.csv", index=False)
    wrong = frame[(frame["score"] > 0.5) != (frame["target"] == 1)]
    app = make_app(runs, images="none")
    async with app.run_test(size=(140, 40)) as pilot:
        await pick_run(pilot, app, "big")
        started = time.perf_counter()
        await pilot.press("v")
        await wait_until(pilot, lambda: isinstance(app.screen, PredictionsScreen) and
                         app.screen.query_one(FrameTable).row_count == n, 30, "150,000 rows")
        opened = time.perf_counter() - started
        screen = app.screen
        table = screen.query_one(FrameTable)
        top = frame.loc[frame["score"].idxmax()]
        assert float(table.value_at(0, "score")) == top["score"]
        started = time.perf_counter()
        await pilot.press("f")
        await wait_until(pilot, lambda: table.row_count == len(wrong), 30, "the misclassified rows")
        filtered = time.perf_counter() - started
        assert float(table.value_at(0, "score")) == wrong["score"].max()
        assert all(not table.value_at(r, "correct") for r in range(0, table.row_count, 997))
        started = time.perf_counter()
        await choose(pilot, screen.query_one("#sort", Select), "name")
        first = min(wrong["img_name"])
        await wait_until(pilot, lambda: str(table.value_at(0, "img_name")) == first, 30, "rows by name")
        sorted_s = time.perf_counter() - started
        assert table.row_count == len(wrong)
        assert str(table.value_at(table.row_count - 1, "img_name")) == max(wrong["img_name"])
        assert select_label(screen.query_one("#filter")) == f"misclassified ({len(wrong):,})"
    print(f"\n150,000 predictions: opened in {opened:.2f}s, misclassified ({len(wrong):,}) in {filtered:.2f}s, "
          f"sorted by name in {sorted_s:.2f}s (key press to rows on screen, Pilot pauses included)")


# ---------------------------------------------------------------- dataset screen


@pytest.fixture
def no_runs(tmp_path: Path) -> Path:
    """An empty runs folder: the dataset screen then opens the app's --data."""
    (tmp_path / "no-runs").mkdir()
    return tmp_path / "no-runs"


@pytest.fixture
def broken_sample(tmp_path: Path) -> tuple[Path, list[tuple[str, int, str, str]]]:
    """sample_data with one problem of each kind; returns it and the (split, line, kind, name) expected."""
    data = Path(shutil.copytree(SAMPLE_DATA, tmp_path / "broken"))
    train = pd.read_csv(data / "trainset_label.txt", dtype=str)["img_name"]
    val = pd.read_csv(data / "valset_label.txt", dtype=str)["img_name"]
    (data / "trainset" / train[3]).write_bytes(b"")  # line 5 (header is line 1)
    whole = (data / "trainset" / train[10]).read_bytes()
    (data / "trainset" / train[10]).write_bytes(whole[: len(whole) // 2])  # line 12
    (data / "valset" / val[5]).unlink()  # line 7
    (data / "valset" / val[7]).write_text("this is a text file, not a picture\n")  # line 9
    lines = (data / "trainset_label.txt").read_text().splitlines()
    lines[31] = lines[31].rsplit(",", 1)[0] + ",7"  # line 32
    (data / "trainset_label.txt").write_text("\n".join(lines) + "\n")
    expected = [("train", 5, "empty", train[3]), ("train", 12, "truncated", train[10]),
                ("val", 7, "missing", val[5]), ("val", 9, "unreadable", val[7])]
    return data, expected


async def open_dataset(pilot, app: FfdvApp) -> DatasetScreen:
    await wait_until_listed(pilot, app)
    await pilot.press("d")
    await wait_until(pilot, lambda: isinstance(app.screen, DatasetScreen), 30, "the dataset screen")
    return app.screen


def scan_status(screen: DatasetScreen) -> str:
    return static_text(screen.query_one("#scan-status", Static))


def scan_finished(screen: DatasetScreen) -> bool:
    """The scan's worker is done and the progress bar is gone (what a person sees of a finished scan)."""
    workers = [w for w in screen.workers if w.group == "dataset-scan"]
    return not screen.query_one("#scan-progress").display and all(w.is_finished for w in workers)


def split_row(summary: str, split: str) -> list[str]:
    """The cells of one split's line in the summary's table."""
    for line in summary.splitlines():
        cells = [c for c in line.split() if c not in "│┃"]
        if cells and cells[0] == split:
            return cells
    raise AssertionError(f"no {split} line in the summary:\n{summary}")


async def test_scan_lists_every_problem_with_its_kind_and_line(broken_sample, no_runs: Path) -> None:
    data, expected = broken_sample
    app = make_app(no_runs, data=data, images="none")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_dataset(pilot, app)
        issues = screen.query_one("#ds-issues", FrameTable)
        await wait_until(pilot, lambda: scan_finished(screen) and issues.row_count == 4, 30, "the scan to finish")
        assert issues.display
        rows = [(issues.value_at(r, "split"), issues.value_at(r, "line"), issues.value_at(r, "kind"),
                 issues.value_at(r, "message")) for r in range(issues.row_count)]
        found = sorted((split, int(line), kind) for split, line, kind, _ in rows)
        assert found == sorted((split, line, kind) for split, line, kind, _ in expected), rows
        for split, line, kind, name in expected:
            message = next(m for s, ln, k, m in rows if (s, int(ln), k) == (split, line, kind))
            assert name in message and f"line {line} of {split}set_label.txt" in message, message
        summary = static_text(screen.query_one("#ds-summary", Static))
        assert "trainset_label.txt" in summary and "line 32" in summary and "'7'" in summary and "Fix:" in summary
        # the healthy splits are counted in full; the broken ones are still scanned
        assert split_row(summary, "val")[1:5] == ["128", "64", "64", "128"]
        assert split_row(summary, "test")[1:5] == ["88", "44", "44", "88"]
        assert split_row(summary, "test")[-1] == "0" and split_row(summary, "val")[-1] == "2"
        assert split_row(summary, "train")[1] == "384" and split_row(summary, "train")[-1] == "2"
        # the highlighted problem's whole message is shown under the problems table
        issues.focus()
        await pilot.press("down")
        detail = screen.query_one("#issue-detail", Static)
        await wait_until(pilot, lambda: str(rows[1][3]) in static_text(detail), 30, "the whole message")


async def test_status_says_the_scan_is_done_when_it_found_problems(broken_sample, no_runs: Path) -> None:
    """The status line reports the finished scan (done, counts, problems), as it does for a healthy dataset."""
    data, _ = broken_sample
    app = make_app(no_runs, data=data, images="none")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_dataset(pilot, app)
        issues = screen.query_one("#ds-issues", FrameTable)
        await wait_until(pilot, lambda: scan_finished(screen) and issues.row_count == 4, 30, "the scan to finish")
        status = scan_status(screen)
        assert "scan done: problems below" in status and "600 of 600 images" in status and "4 problems" in status, \
            status


def slow_scan(seconds_per_image: float):
    from engine.data.scan import scan_dataset

    def scan(root, on_progress=None, should_stop=None, **kwargs):
        def stop() -> bool:
            time.sleep(seconds_per_image)
            return bool(should_stop and should_stop())

        return scan_dataset(root, on_progress, stop, **kwargs)

    return scan


async def test_x_cancels_a_scan(no_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ffdv_tui.screens.dataset.scan_dataset", slow_scan(0.02))  # 600 images: 12 s
    app = make_app(no_runs, data=SAMPLE_DATA, images="none")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_dataset(pilot, app)
        await wait_until(pilot, lambda: "scanning" in scan_status(screen) and " 0 of " not in scan_status(screen),
                         10, "the scan to be under way")
        started = time.monotonic()
        await pilot.press("x")
        await wait_until(pilot, lambda: "scan cancelled" in scan_status(screen), 30, "the cancelled scan")
        print(f"\nscan cancelled {time.monotonic() - started:.2f}s after x: {scan_status(screen).strip()}")
        scanned = int(scan_status(screen).split("·")[1].split()[0].replace(",", ""))
        assert 0 < scanned < 600
        assert not screen.query_one("#scan-progress").display
        await pilot.pause(0.5)  # time passes: nothing may carry on behind the cancelled scan
        assert "scan cancelled" in scan_status(screen)
        await pilot.press("r")
        await wait_until(pilot, lambda: "scanning" in scan_status(screen), 30, "a new scan")
        await pilot.press("x")
        await wait_until(pilot, lambda: "scan cancelled" in scan_status(screen), 30, "the second cancel")


async def test_class_filter_search_and_preview_of_the_images(no_runs: Path) -> None:
    labels = pd.read_csv(SAMPLE_DATA / "trainset_label.txt", dtype={"img_name": str})
    app = make_app(no_runs, data=SAMPLE_DATA, images="halfcell")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_dataset(pilot, app)
        table = screen.query_one("#ds-images", FrameTable)
        await wait_until(pilot, lambda: table.row_count == len(labels) and "reading" not in table.border_subtitle,
                         10, "the train split")
        assert [str(n) for n in column(table, "img_name")] == labels["img_name"].tolist()
        # the preview follows the highlight
        preview = screen.query_one("#ds-preview", ImagePreview)
        await pilot.press("down", "down")
        name = labels["img_name"][2]
        await wait_until(pilot, lambda: preview._path == SAMPLE_DATA / "trainset" / name and
                         preview.query_one("#picture").image is not None, 30, "the third image")
        caption = static_text(preview.query_one("#caption", Static))
        assert name in caption and f"label {LABEL[int(labels['target'][2])]}" in caption
        # class filter
        await choose(pilot, screen.query_one("#ds-class", Select), "fake")
        fake = labels[labels["target"] == 1]
        await wait_until(pilot, lambda: table.row_count == len(fake), 30, "fake only")
        assert set(column(table, "target")) == {1}
        assert [str(n) for n in column(table, "img_name")] == fake["img_name"].tolist()
        assert table.border_subtitle == f"{len(fake):,} of {len(labels):,}"
        # search, within the class
        await focus_with_tab(pilot, screen.query_one("#ds-search", Input))
        await type_into(pilot, "a1")
        want = [n for n in fake["img_name"] if "a1" in n.lower()]
        assert 0 < len(want) < len(fake)
        await wait_until(pilot, lambda: [str(n) for n in column(table, "img_name")] == want, 30, "the search")
        await choose(pilot, screen.query_one("#ds-class", Select), "real")
        want = [n for n, t in zip(labels["img_name"], labels["target"]) if t == 0 and "a1" in n.lower()]
        await wait_until(pilot, lambda: [str(n) for n in column(table, "img_name")] == want, 30, "real and searched")
        # another split
        await choose(pilot, screen.query_one("#ds-split", Select), "val")
        val = pd.read_csv(SAMPLE_DATA / "valset_label.txt", dtype={"img_name": str})
        want = [n for n, t in zip(val["img_name"], val["target"]) if t == 0 and "a1" in n.lower()]
        await wait_until(pilot, lambda: [str(n) for n in column(table, "img_name")] == want, 30, "the val split")


async def test_slash_focuses_the_image_search(no_runs: Path) -> None:
    app = make_app(no_runs, data=SAMPLE_DATA, images="none")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_dataset(pilot, app)
        await wait_until(pilot, lambda: screen.query_one("#ds-images", FrameTable).has_focus, 30, "the image table")
        await pilot.press("slash")
        await wait_until(pilot, lambda: screen.query_one("#ds-search", Input).has_focus, 30, "the search's focus")


async def test_opening_the_dataset_screen_reads_the_split_once(no_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One read of the split's label file on opening (each extra read of a 1,000,000-line file costs ~0.8 s)."""
    import ffdv_tui.screens.dataset as dataset_screen

    reads: list[str] = []
    real = dataset_screen.quick_split
    monkeypatch.setattr(dataset_screen, "quick_split", lambda root, split: reads.append(split) or real(root, split))
    app = make_app(no_runs, data=SAMPLE_DATA, images="none")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_dataset(pilot, app)
        table = screen.query_one("#ds-images", FrameTable)
        await wait_until(pilot, lambda: table.row_count == 384 and "reading" not in table.border_subtitle, 10,
                         "the train split")
        await wait_until(pilot, lambda: scan_finished(screen), 30, "the scan")
        await pilot.pause(0.3)  # time passes: no second read may follow the scan
    assert reads == ["train"]


async def test_a_folder_that_is_not_a_dataset_says_so(no_runs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "holiday-photos"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a dataset")
    app = make_app(no_runs, data=folder, images="none")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_dataset(pilot, app)
        summary = screen.query_one("#ds-summary", Static)
        await wait_until(pilot, lambda: "not a dataset" in static_text(summary), 30, "the engine's message")
        from engine.data.scan import scan_dataset

        assert scan_dataset(folder).error.split("\n")[0] in static_text(summary).replace("\n", "")
        assert screen.query_one("#ds-images", FrameTable).row_count == 0
        # typing a good folder into the path field opens it
        field = screen.query_one("#ds-path", Input)
        await focus_with_tab(pilot, field)
        field.value = str(SAMPLE_DATA)
        await pilot.press("enter")
        await wait_until(pilot, lambda: "scan done" in scan_status(screen), 30, "the scan of sample_data")
        assert "not a dataset" not in static_text(summary)


async def test_a_million_line_label_file_opens_at_once_then_whole(no_runs: Path, tmp_path: Path) -> None:
    data = tmp_path / "huge"
    (data / "trainset").mkdir(parents=True)
    n = 1_000_000
    names = np.char.add(np.char.zfill(np.arange(n).astype(str), 8), ".jpg")
    targets = np.arange(n) % 2
    lines = "\n".join(f"{a},{b}" for a, b in zip(names.tolist(), targets.tolist()))
    (data / "trainset_label.txt").write_text(f"img_name,target\n{lines}\n")
    app = make_app(no_runs, data=data, images="none")
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until_listed(pilot, app)
        started = time.perf_counter()
        await pilot.press("d")
        await wait_until(pilot, lambda: app.screen.query_one("#ds-images", FrameTable).row_count > 0, 10,
                         "the first rows")
        first = time.perf_counter() - started
        screen = app.screen
        table = screen.query_one("#ds-images", FrameTable)
        assert table.value_at(0, "img_name") == "00000000.jpg" and table.value_at(1, "target") == 1
        await wait_until(pilot, lambda: table.row_count == n, 60, "all 1,000,000 rows")
        whole = time.perf_counter() - started
        assert table.value_at(n - 1, "img_name") == f"{n - 1:08d}.jpg"
        assert table.border_subtitle == f"{n:,} of {n:,}"
        await pilot.press("end")
        await wait_until(pilot, lambda: table.cursor_row == n - 1, 30, "the last row")
        await pilot.press("x")  # the scan of a million missing images: not needed here
    print(f"\n1,000,000-line label file: first rows after {first:.2f}s, all rows after {whole:.2f}s")


# ---------------------------------------------------------------- checkpoints screen


@pytest.fixture(scope="module")
def trained_runs(tiny_ffdi: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real two-epoch run "tiny", plus a run "imported" holding a checkpoint without a sidecar and one whose
    sidecar names a model that timm does not have."""
    from engine.cli import main

    runs = tmp_path_factory.mktemp("ckpt") / "runs"
    started = time.perf_counter()
    assert main(["train", "--data", str(tiny_ffdi), "--runs", str(runs), *FAST_TRAIN, "--epochs", "2",
                 "--name", "tiny"]) == 0
    print(f"\ntrained the tiny run in {time.perf_counter() - started:.1f}s")
    weights = runs / "tiny" / "checkpoints" / "epoch-001.safetensors"
    imported = runs / "imported" / "checkpoints"
    imported.mkdir(parents=True)
    shutil.copy(weights, imported / "no-sidecar.safetensors")
    shutil.copy(weights, imported / "alien.safetensors")
    sidecar = json.loads(weights.with_suffix(".json").read_text())
    sidecar["model"] = "not_a_timm_net"
    sidecar["config"]["model"]["name"] = "not_a_timm_net"
    (imported / "alien.json").write_text(json.dumps(sidecar))
    return runs


@pytest.fixture
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's cached list of timm models (what `k` checks sidecars against): MODEL_NAMES."""
    from ffdv_tui.model_names import cache_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache_path().parent.mkdir(parents=True)
    cache_path().write_text(json.dumps(MODEL_NAMES))


def sidecar_of(runs: Path, key: str) -> dict:
    run, name = key.split("/")
    return json.loads((runs / run / "checkpoints" / f"{name}.json").read_text())


async def open_checkpoints(pilot, app: FfdvApp, count: int = 4) -> CheckpointsScreen:
    await wait_until_listed(pilot, app)
    await pilot.press("k")
    await wait_until(pilot, lambda: isinstance(app.screen, CheckpointsScreen), 30, "the checkpoints screen")
    screen = app.screen
    await wait_until(pilot, lambda: screen.query_one(FrameTable).row_count == count, 30, f"{count} checkpoints")
    return screen


async def go_to(pilot, screen: CheckpointsScreen, key: str) -> None:
    keys = [e.key for e in screen.entries]
    for _ in range(len(keys) + 1):
        if screen.highlighted is not None and screen.highlighted.key == key:
            break
        await pilot.press("down" if keys.index(key) > keys.index(screen.highlighted.key) else "up")
    assert screen.highlighted.key == key


def detail(screen: CheckpointsScreen) -> str:
    return static_text(screen.query_one("#ckpt-detail", Static))


@pytest.mark.slow
async def test_every_checkpoint_is_listed_with_its_problem(trained_runs: Path, model_cache, tiny_ffdi: Path) -> None:
    from engine.contract.fmt import fmt_metric

    app = make_app(trained_runs, data=tiny_ffdi, images="none")
    async with app.run_test(size=(160, 40), notifications=True) as pilot:
        screen = await open_checkpoints(pilot, app)
        table = screen.query_one(FrameTable)
        rows = {f"{table.value_at(r, 'run')}/{table.value_at(r, 'checkpoint')}": r for r in range(table.row_count)}
        assert set(rows) == {"tiny/epoch-001", "tiny/epoch-002", "imported/no-sidecar", "imported/alien"}
        assert "sidecar missing" in table.value_at(rows["imported/no-sidecar"], "problem")
        assert "'not_a_timm_net' is not a timm model" in table.value_at(rows["imported/alien"], "problem")
        best = (trained_runs / "tiny" / "checkpoints" / "best.safetensors").resolve().stem
        for name in ("epoch-001", "epoch-002"):
            row = rows[f"tiny/{name}"]
            assert table.value_at(row, "problem") == ""
            assert bool(table.value_at(row, "best")) == (name == best)
            metrics = sidecar_of(trained_runs, f"tiny/{name}")["metrics"]
            assert table.value_at(row, "auc") == metrics["auc"] and table.value_at(row, "f1") == metrics["f1"]
            assert table.value_at(row, "size") == (trained_runs / "tiny" / "checkpoints" / f"{name}.safetensors").stat().st_size
        # the detail panel of each; the problem is spelled out there too
        await go_to(pilot, screen, "imported/no-sidecar")
        await wait_until(pilot, lambda: "sidecar missing" in detail(screen), 30, "the problem in the detail")
        await go_to(pilot, screen, "tiny/epoch-002")
        text = detail(screen)
        assert "resnet10t at 64 px" in text and "yes (training state beside it)" in text
        assert "AUC" in text and fmt_metric(sidecar_of(trained_runs, "tiny/epoch-002")["metrics"]["auc"]) in text
        # a checkpoint whose model is unknown cannot be evaluated: said, not attempted
        await go_to(pilot, screen, "imported/no-sidecar")
        await pilot.press("e")
        await wait_until(pilot, lambda: any("sidecar missing" in n.message for n in app._notifications), 30, "the reason")
        assert isinstance(app.screen, CheckpointsScreen)


def result_text(screen: CheckpointsScreen) -> str:
    return static_text(screen.query_one("#job-result", Static))


def metric_values(text: str) -> dict[str, str]:
    """label -> value of the result panel's metric table."""
    from engine.contract.protocol import METRIC_LABELS

    values = {}
    for line in text.splitlines():
        cells = [c for c in line.replace("│", " ").split() if c]
        if len(cells) == 2 and cells[0] in METRIC_LABELS.values():
            values[cells[0]] = cells[1]
    return values


@pytest.mark.slow
async def test_evaluate_shows_the_sidecar_metrics_and_opens_the_predictions(trained_runs: Path, model_cache,
                                                                           tiny_ffdi: Path) -> None:
    from engine.contract.fmt import fmt_metric
    from engine.contract.protocol import METRIC_LABELS

    app = make_app(trained_runs, data=tiny_ffdi, images="none")
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await open_checkpoints(pilot, app)
        await go_to(pilot, screen, "tiny/epoch-002")
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, JobScreen), 30, "the job dialog")
        job = app.screen
        assert job.query_one("#job-data", Input).value == str(tiny_ffdi)
        assert job.query_one("#job-split", Select).value == "val"
        started = time.perf_counter()
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen, 30, "the dialog to close")
        await wait_until(pilot, lambda: "press o to open" in result_text(screen) or "failed" in result_text(screen),
                         300, "the evaluation")
        print(f"\nevaluation of tiny/epoch-002 in {time.perf_counter() - started:.1f}s")
        text = result_text(screen)
        assert "tiny/epoch-002 on val" in " ".join(text.split()), text  # the table's title (it may wrap)
        metrics = sidecar_of(trained_runs, "tiny/epoch-002")["metrics"]
        assert metric_values(text) == {label: fmt_metric(metrics.get(key)) for key, label in METRIC_LABELS.items()}
        assert "press o to open its 48 predictions" in text
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, PredictionsScreen), 30, "the predictions screen")
        predictions = app.screen
        table = predictions.query_one(FrameTable)
        await wait_until(pilot, lambda: table.row_count == 48, 30, "48 predictions")
        val = pd.read_csv(tiny_ffdi / "valset_label.txt")
        shown_targets = dict(zip(map(str, column(table, "img_name")), map(int, column(table, "target"))))
        assert shown_targets == dict(zip(val["img_name"], val["target"]))
        assert all(0.0 <= float(s) <= 1.0 for s in column(table, "score"))
        # the evaluation's confusion at 0.5 is the sidecar's
        (tn, fp), (fn, tp) = metrics["confusion"]
        assert f"TN {tn} FP {fp} FN {fn} TP {tp}" in static_text(predictions.query_one("#pred-metrics"))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, 30, "back to the checkpoints")


@pytest.mark.slow
async def test_submission_on_the_test_split(trained_runs: Path, model_cache, tiny_ffdi: Path) -> None:
    app = make_app(trained_runs, data=tiny_ffdi, images="none")
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await open_checkpoints(pilot, app)
        await go_to(pilot, screen, "tiny/epoch-001")
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, JobScreen), 30, "the job dialog")
        job = app.screen
        out = trained_runs / "tiny" / "submissions" / "epoch-001-test.csv"
        assert job.query_one("#job-split", Select).value == "test"
        assert job.query_one("#job-out", Input).value == str(out)
        started = time.perf_counter()
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "written and checked" in result_text(screen) or "failed" in result_text(screen),
                         300, "the submission")
        print(f"\nsubmission of tiny/epoch-001 in {time.perf_counter() - started:.1f}s")
        text = result_text(screen)
        assert "submission written and checked" in text and str(out) in text.replace("\n", ""), text
    submission = pd.read_csv(out, dtype={"img_name": str})
    test = pd.read_csv(tiny_ffdi / "testset_label.txt", dtype={"img_name": str})
    assert list(submission.columns) == ["img_name", "y_pred"]
    assert submission["img_name"].tolist() == test["img_name"].tolist()  # every test image, the label file's order
    assert submission["y_pred"].between(0, 1).all() and submission["y_pred"].notna().all()
    assert submission["y_pred"].nunique() > 1
    assert f"{len(test):,} rows" in text


@pytest.mark.slow
async def test_a_checkpoint_naming_an_unknown_model_fails_with_the_engines_reason(trained_runs: Path, model_cache,
                                                                                  tiny_ffdi: Path) -> None:
    app = make_app(trained_runs, data=tiny_ffdi, images="none")
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await open_checkpoints(pilot, app)
        await go_to(pilot, screen, "imported/alien")
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, JobScreen), 30, "the job dialog")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "failed" in result_text(screen) or "press o" in result_text(screen), 300,
                         "the evaluation to end")
        text = result_text(screen)
        print(f"\nunknown model: {text.strip()}")
        assert "evaluation failed" in text and "not_a_timm_net" in text, text
        assert not screen.query_one("#job-progress").display


@pytest.mark.slow
async def test_fine_tune_opens_the_form_prefilled(trained_runs: Path, model_cache, tiny_ffdi: Path) -> None:
    app = make_app(trained_runs, data=tiny_ffdi, images="none")
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await open_checkpoints(pilot, app)
        await go_to(pilot, screen, "tiny/epoch-002")
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, NewRunScreen), 30, "the new-run form")
        form = app.screen
        await wait_until(pilot, lambda: form.ready, 30, "the form's checks")
        weights = (trained_runs / "tiny" / "checkpoints" / "epoch-002.safetensors").resolve()
        values = {name: form.query_one(f"#{name}").value for name in ("model", "img_size", "data", "pretrained", "name")}
        assert values == {"model": "resnet10t", "img_size": "64", "data": str(tiny_ffdi), "pretrained": str(weights),
                          "name": "tiny-ft"}
        assert not form.query_one("#start").disabled
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, 30, "back to the checkpoints")


@pytest.mark.slow
async def test_compare_two_checkpoints(trained_runs: Path, model_cache, tiny_ffdi: Path) -> None:
    from engine.contract.fmt import fmt_metric
    from engine.contract.protocol import METRIC_LABELS

    app = make_app(trained_runs, data=tiny_ffdi, images="none")
    async with app.run_test(size=(180, 50)) as pilot:
        screen = await open_checkpoints(pilot, app)
        await go_to(pilot, screen, "tiny/epoch-001")
        await pilot.press("m")
        await wait_until(pilot, lambda: "marked: move to another checkpoint" in detail(screen), 30, "the mark")
        await pilot.press("down")
        await wait_until(pilot, lambda: "compare" in detail(screen), 30, "the comparison")
        text = detail(screen)
        assert "tiny/epoch-001" in text and "tiny/epoch-002" in text
        a = sidecar_of(trained_runs, "tiny/epoch-001")["metrics"]
        b = sidecar_of(trained_runs, "tiny/epoch-002")["metrics"]
        compare_part = text[text.index("compare"):]
        for key, label in METRIC_LABELS.items():
            want = [label, fmt_metric(a.get(key)), fmt_metric(b.get(key)), f"{b[key] - a[key]:+.4f}"]
            lines = [line.split() for line in compare_part.splitlines() if line.split()[:1] == [label]]
            assert [[c for c in cells if c != "│"] for cells in lines] == [want], (label, compare_part)
        # m on the marked one again clears the mark
        await pilot.press("up", "m")
        await wait_until(pilot, lambda: "compare" not in detail(screen) and "marked" not in detail(screen), 5,
                         "the mark to clear")
