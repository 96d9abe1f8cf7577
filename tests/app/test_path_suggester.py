"""Folder completion in the inputs that take datasets (the matrix form, evaluate/submission, the dataset screen)."""

from __future__ import annotations

from pathlib import Path

from pilot_helpers import make_app, wait_until
from textual.widgets import Input

from ffdv_tui.screens.matrix_form import MatrixFormScreen
from ffdv_tui.widgets.path_suggester import SCAN_LIMIT, complete_folder


def folders(root: Path, *names: str) -> Path:
    for name in names:
        (root / name).mkdir(parents=True)
    return root


def test_the_last_part_completes_to_the_first_matching_folder(tmp_path: Path) -> None:
    root = folders(tmp_path, "other/valset", "other/val_extra", "other/trainset", "other/.hidden", "other/vb")
    (root / "other" / "valfile.txt").write_text("x")  # files are not offered
    assert complete_folder(f"{root}/other/va") == f"{root}/other/val_extra/"
    assert complete_folder(f"{root}/other/tr") == f"{root}/other/trainset/"
    assert complete_folder(f"{root}/other/valf") is None
    assert complete_folder(f"{root}/other/valset") is None  # already complete
    assert complete_folder(f"{root}/other/.h") == f"{root}/other/.hidden/"
    assert complete_folder(f"{root}/other/") == f"{root}/other/trainset/"  # hidden ones only when asked for
    assert complete_folder(f"{root}/missing/x") is None


def test_a_huge_folder_is_looked_at_only_so_far(tmp_path: Path) -> None:
    for i in range(SCAN_LIMIT + 10):
        (tmp_path / f"img{i:06d}.jpg").touch()
    (tmp_path / "zz_folder").mkdir()
    assert complete_folder(f"{tmp_path}/zz") in (None, f"{tmp_path}/zz_folder/")


async def test_the_matrix_form_completes_a_dataset_path(tmp_path: Path) -> None:
    data = folders(tmp_path / "data", "one/valset", "two/valset")
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(MatrixFormScreen("Evaluation matrix of a", [], several=False))
        await wait_until(pilot, lambda: isinstance(app.screen, MatrixFormScreen) and app.screen.query_one("#matrix-data"), 10,
                         "the matrix form")
        field = app.screen.query_one("#matrix-data", Input)
        field.focus()
        field.value = f"{data}/one/valset {data}/tw"
        field.cursor_position = len(field.value)
        await wait_until(pilot, lambda: field._suggestion == f"{data}/one/valset {data}/two/", 10, "the suggestion")
        await pilot.press("right")
        await wait_until(pilot, lambda: field.value == f"{data}/one/valset {data}/two/", 10, "the completed path")
