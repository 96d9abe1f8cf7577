"""The README is a front page and the docs/ pages point at things that exist.

A page that names a file, a module or another page which has moved or been renamed misleads the
reader who follows it; these tests find such names when the code moves, not when someone gets lost.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict
from functools import cache
from pathlib import Path

import pytest
from conftest import REPO

README = REPO / "README.md"
PAGES = sorted((REPO / "docs").glob("*.md"))
DOCUMENTS = [README, REPO / "ARCHITECTURE.md", *PAGES]
FRONT_PAGE_LINES = 300
COMMANDS = ("make run", "make test")
# A bare file name (no folder) with one of these endings names a file of the repository; other bare
# names with a dot (`events.jsonl`, `best.safetensors`) are files of a run folder or a dataset.
SOURCE_SUFFIXES = (".py", ".tcss", ".sh", ".md")
# `engine.log` and `engine.json` are files of a run folder, not modules.
FILE_ENDINGS = {"log", "json", "jsonl", "toml", "csv", "txt", "md", "py", "pt", "safetensors", "parquet"}
# Words that mark a path as a pattern for the reader to fill in, not a file of the repository.
PLACEHOLDER = re.compile(r"[<>{}$~…]|\.\.\.|NNN|NAME|DATA|YOURS|\bN\b|\bfoo\b")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
SPAN = re.compile(r"`([^`\n]+)`")


def prose(path: Path) -> str:
    """The page without its fenced code blocks (listings and example output, not references)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def ignored_folders() -> set[str]:
    """Top-level folders the repository ignores (runs/, .venv/...): paths in them are the user's."""
    lines = (REPO / ".gitignore").read_text().splitlines()
    return {line.strip().strip("/") for line in lines if line.strip().endswith("/")} | {".git"}


def top_folders() -> set[str]:
    return {p.name for p in REPO.iterdir() if p.is_dir()} - ignored_folders()


@cache
def tracked_names() -> frozenset[str]:
    """Every file name in the repository outside the ignored folders, for bare names such as `app.tcss`."""
    skip = ignored_folders()
    names = set()
    for _folder, subfolders, files in os.walk(REPO):
        subfolders[:] = [name for name in subfolders if name not in skip and not name.endswith(".egg-info")]
        names.update(files)
    return frozenset(names)


def is_repository_path(token: str, folders: set[str]) -> bool:
    """Whether a word in backticks names a file or folder of the repository (and so must exist).

    It does when it starts with one of the repository's top-level folders (`engine/contract/config.py`,
    `tests/test_keys.py`, `bench/`) or is a bare source file name (`ARCHITECTURE.md`, `app.tcss`).
    Patterns (`runs/<name>/`, `DATA/...`, `epoch-NNN.csv`), URLs and options are not paths.
    """
    token = token.rstrip(".,:;)")
    if PLACEHOLDER.search(token) or "://" in token or token.startswith("-"):
        return False
    if "/" in token:
        return token.split("/")[0] in folders
    return token.endswith(SOURCE_SUFFIXES)


def path_exists(token: str, names: frozenset[str]) -> bool:
    token = token.rstrip(".,:;)")
    if "/" not in token:
        return (REPO / token).exists() or token in names
    path = token.split(":")[0]  # engine/cli/__init__.py:main
    if any(c in path for c in "*?["):
        return any(REPO.glob(path))
    return (REPO / path.rstrip("/")).exists()


def module_problem(dotted: str) -> str | None:
    """Why `engine.contract.runstore.RunPaths` names nothing (a moved module, a renamed name), or None."""
    parts = dotted.rstrip("()").split(".")
    where = REPO / parts[0]
    for i, part in enumerate(parts[1:], start=1):
        if (where / part).is_dir() and (where / part / "__init__.py").exists():
            where = where / part
        elif (where / f"{part}.py").exists():
            source = (where / f"{part}.py").read_text(encoding="utf-8")
            rest = parts[i + 1:]
            if rest and not re.search(rf"\b{re.escape(rest[0])}\b", source):
                return f"{'.'.join(parts[:i + 1])} has no {rest[0]}"
            return None
        else:
            init = (where / "__init__.py").read_text(encoding="utf-8")
            if re.search(rf"^(def|class) {re.escape(part)}\b|^{re.escape(part)}\s*[:=]", init, re.M):
                return None
            return f"{'.'.join(parts[:i])} has no module or name {part}"
    return None


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", prose(path), re.M)}


def test_the_readme_is_a_front_page_with_the_two_commands_first() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= FRONT_PAGE_LINES, f"README.md has {len(lines)} lines; move reference into docs/"
    first = "\n".join(lines[:20])
    for command in COMMANDS:
        assert command in first, f"`{command}` is not in the first 20 lines of README.md"


def test_every_page_is_linked_from_the_index_and_the_index_from_the_readme() -> None:
    index = (REPO / "docs" / "index.md").read_text(encoding="utf-8")
    assert "docs/index.md" in README.read_text(encoding="utf-8")
    for page in PAGES:
        if page.name != "index.md":
            assert f"({page.name})" in index or f"({page.name}#" in index, f"docs/index.md does not link {page.name}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_reaches_a_file_and_its_heading(document: Path) -> None:
    broken = []
    for match in LINK.finditer(prose(document)):
        target = match.group(1) or match.group(2)
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        path = (document.parent / file).resolve() if file else document
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: {path.name} has no heading #{anchor}")
    assert not broken, f"{document.relative_to(REPO)}: " + "; ".join(broken)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_repository_path_and_module_in_backticks_exists(document: Path) -> None:
    folders, names = top_folders(), tracked_names()
    missing = []
    for span in SPAN.findall(prose(document)):
        for token in span.split():
            if is_repository_path(token, folders) and not path_exists(token, names):
                missing.append(token)
            elif re.fullmatch(r"(engine|ffdv_tui)(\.\w+)+(\(\))?", token) and token.split(".")[-1] not in FILE_ENDINGS:
                problem = module_problem(token)
                if problem:
                    missing.append(f"{token} ({problem})")
    assert not missing, f"{document.relative_to(REPO)} names what does not exist: {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_test_named_in_backticks_exists(document: Path) -> None:
    """A promise that cites its test (`test_a_kill_in_any_window_...`) cites one that runs."""
    defined = set()
    for path in (REPO / "tests").rglob("test_*.py"):
        defined |= set(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(encoding="utf-8"), re.M))
    named = {name for span in SPAN.findall(prose(document)) for name in re.findall(r"^(test_\w+)$", span)}
    assert not named - defined, f"{document.relative_to(REPO)} cites tests that do not exist: {sorted(named - defined)}"


def test_the_configuration_page_lists_every_setting_with_its_default() -> None:
    """The TOML on docs/configuration.md is the whole Config, defaults included (the dataset root aside)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    from engine.contract.config import Config

    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = tomllib.loads(re.search(r"```toml\n(.*?)```", text, re.S).group(1))
    defaults = asdict(Config())
    documented["data"]["root"] = defaults["data"]["root"]
    assert documented == defaults


def test_the_cli_page_lists_every_ffdv_command() -> None:
    """A new command of engine/cli/ gets a row in docs/cli.md's table (hidden ones, such as `supervise`, aside)."""
    import argparse

    from engine.cli import build_parser

    parser, _ = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = {choice.dest for choice in sub._choices_actions if choice.help != argparse.SUPPRESS}
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    table = text[text.index("| command | what it does |"):].split("\n\n")[0]
    listed = {name for line in table.splitlines()[2:] for name in re.findall(r"`([a-z-]+)`", line.split("|")[1])}
    assert commands <= listed, f"docs/cli.md's table misses {sorted(commands - listed)}"


SCREENS = {  # the first column of the workbench page's keys table: the screen it names
    "predictions (`v`)": "ffdv_tui.screens.predictions:PredictionsScreen",
    "dataset (`d`)": "ffdv_tui.screens.dataset:DatasetScreen",
    "checkpoints (`k`)": "ffdv_tui.screens.checkpoints:CheckpointsScreen",
    "matrix": "ffdv_tui.screens.matrix:MatrixScreen",
    "queue (`u`)": "ffdv_tui.screens.queue:QueueScreen",
    "comparison (`m`)": "ffdv_tui.screens.compare:CompareScreen",
    "runs filter (`/`)": "ffdv_tui.screens.filter:FilterScreen",
    "new-run form": "ffdv_tui.screens.new_run:NewRunScreen",
    "evaluate / submission form": "ffdv_tui.screens.job:JobScreen",
    "evaluation matrix form": "ffdv_tui.screens.matrix_form:MatrixFormScreen",
    "past matrices": "ffdv_tui.screens.matrix_list:MatrixListScreen",
    "questions (stop, quit)": "ffdv_tui.screens.confirm:ConfirmScreen",
    "keys (`?`)": "ffdv_tui.screens.help:HelpScreen",
}


def workbench_keys() -> dict[str, set[str]]:
    """The keys of each screen in the table at the end of docs/workbench.md."""
    text = (REPO / "docs" / "workbench.md").read_text(encoding="utf-8")
    table = text[text.index("| screen | key | action |"):].split("\n\n")[0]
    keys: dict[str, set[str]] = {}
    for line in table.splitlines()[2:]:
        screen, key = (cell.strip() for cell in line.strip("|").split("|")[:2])
        keys.setdefault(screen, set()).update(re.findall(r"`([^`]+)`", key))
    return keys


@pytest.mark.parametrize("screen", SCREENS)
def test_the_workbench_page_lists_every_key_of_each_screen(screen: str) -> None:
    """Like the README's table for the main screen (tests/test_keys.py): the page says what BINDINGS say."""
    import importlib

    from test_keys import own_bindings

    module, name = SCREENS[screen].split(":")
    cls = getattr(importlib.import_module(module), name)
    display = {"question_mark": "?", "slash": "/", "left_square_bracket": "[", "right_square_bracket": "]"}
    bound = {display.get(k.strip(), k.strip()) for b in own_bindings(cls) for k in b.key.split(",")}
    documented = workbench_keys().get(screen, set())
    assert documented == bound, (f"docs/workbench.md lists {sorted(documented - bound)} for {screen} that no binding has, "
                                 f"and misses {sorted(bound - documented)}")


def test_the_workbench_keys_table_names_only_known_screens() -> None:
    assert set(workbench_keys()) <= set(SCREENS), set(workbench_keys()) - set(SCREENS)


@pytest.mark.parametrize(("token", "listed"), [
    ("engine/contract/config.py", True), ("tests/test_keys.py", True), ("bench/bench_engine.py", True),
    ("bench/", True), ("ARCHITECTURE.md", True), ("app.tcss", True), ("tests/test_tmux*.py", True),
    ("runs/<name>/", False), ("DATA/...", False), ("runs/r1", False), ("events.jsonl", False),
    ("epoch-NNN.csv", False), ("config.toml", False), ("engine/foo.py", False), ("--data", False),
    ("~/.cache/ffdv", False), ("https://x.org/a.py", False),
])
def test_what_counts_as_a_repository_path(token: str, listed: bool) -> None:
    assert is_repository_path(token, top_folders()) is listed


@pytest.mark.parametrize(("token", "exists"), [
    ("engine/contract/config.py", True), ("engine/config.py", False), ("tests/test_tmux*.py", True),
    ("tests/test_nothing*.py", False), ("app.tcss", True), ("nowhere.py", False),
])
def test_a_moved_or_misspelt_path_is_found(token: str, exists: bool) -> None:
    assert path_exists(token, tracked_names()) is exists


@pytest.mark.parametrize(("dotted", "fine"), [
    ("engine.contract.runstore.RunPaths", True), ("engine.data", True), ("engine.models.build_network", True),
    ("engine.contract.text.printable()", True), ("engine.dataset", False), ("engine.contract.runstore.NoSuch", False),
])
def test_a_moved_module_or_renamed_name_is_found(dotted: str, fine: bool) -> None:
    assert (module_problem(dotted) is None) is fine
