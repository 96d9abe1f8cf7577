"""No function over 80 lines and no class over 300 in engine/ and ffdv_tui/: a long one is several ideas."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAX_FUNCTION_LINES = 80
MAX_CLASS_LINES = 300


def too_long(root: Path, base: Path = REPO) -> list[str]:
    """``path:line name (N lines)`` of every function and class over its limit, decorators included."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                limit = MAX_FUNCTION_LINES
            elif isinstance(node, ast.ClassDef):
                limit = MAX_CLASS_LINES
            else:
                continue
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines = node.end_lineno - first + 1
            if lines > limit:
                found.append(f"{path.relative_to(base)}:{node.lineno} {node.name} ({lines} lines, limit {limit})")
    return found


def test_no_function_over_80_lines_and_no_class_over_300() -> None:
    found = too_long(REPO / "engine") + too_long(REPO / "ffdv_tui")
    assert not found, "split these into well-named parts:\n" + "\n".join(found)


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n")
    assert [line.split()[1] for line in too_long(tmp_path, tmp_path)] == ["long"]
