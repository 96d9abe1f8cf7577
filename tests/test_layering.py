"""The layering law (ARCHITECTURE.md): the app imports only the torch-free ``engine.contract`` and ``engine.data``;
the engine never imports textual.

Checked twice: statically (every import statement, lazy ones inside functions too) and
at run time (importing every app module and the shared contract pulls in no torch).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = {"torch", "timm", "torchvision", "torchmetrics", "safetensors"}
TORCH_FREE_PACKAGES = ("contract", "data")
TORCH_FREE = sorted(
    [f"engine.{package}" for package in TORCH_FREE_PACKAGES]
    + [f"engine.{package}.{p.stem}" for package in TORCH_FREE_PACKAGES
       for p in (REPO / "engine" / package).glob("*.py") if p.stem != "__init__"]
)


def app_may_import(module: str) -> bool:
    return any(module == f"engine.{package}" or module.startswith(f"engine.{package}.") for package in TORCH_FREE_PACKAGES)


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def python_files(package: str) -> list[Path]:
    files = sorted((REPO / package).rglob("*.py"))
    assert files, package
    return files


@pytest.mark.parametrize("path", python_files("ffdv_tui"), ids=lambda p: str(p.relative_to(REPO)))
def test_app_imports_no_torch_and_only_the_torch_free_engine(path: Path) -> None:
    for line, module in imports(path):
        assert module.split(".")[0] not in HEAVY, f"{path}:{line} imports {module}"
        if module.split(".")[0] == "engine":
            assert app_may_import(module), f"{path}:{line} imports {module}, which may load torch"


@pytest.mark.parametrize("path", python_files("engine"), ids=lambda p: str(p.relative_to(REPO)))
def test_engine_imports_no_textual(path: Path) -> None:
    for line, module in imports(path):
        assert module.split(".")[0] != "textual", f"{path}:{line} imports {module}"
        assert not module.startswith("ffdv_tui"), f"{path}:{line} imports the app"


@pytest.mark.parametrize("path", python_files("engine/contract") + python_files("engine/data"),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_shared_contract_is_torch_free(path: Path) -> None:
    for line, module in imports(path):
        assert module.split(".")[0] not in HEAVY, f"{path}:{line} imports {module}"
        if module.startswith("engine."):
            assert app_may_import(module), f"{path}:{line} imports {module}"


def test_import_linter_names_every_torch_side_module() -> None:
    """The import-linter contract lists the engine's torch side by name; a new module must join it."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    forbidden = next(set(c["forbidden_modules"]) for c in contracts if "engine.contract" in c["source_modules"]
                     and any(m.startswith("engine.") for m in c["forbidden_modules"]))
    torch_side = {f"engine.{p.stem}" for p in (REPO / "engine").glob("*.py") if p.stem not in ("__init__", "__main__")}
    torch_side |= {f"engine.{p.parent.name}" for p in (REPO / "engine").glob("*/__init__.py")
                   if p.parent.name not in TORCH_FREE_PACKAGES}
    assert torch_side == forbidden, f"pyproject's import-linter contract misses {sorted(torch_side - forbidden)}"


def test_import_linter_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    result = subprocess.run([str(lint)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_importing_the_app_and_the_contract_loads_no_torch() -> None:
    code = (
        "import importlib, pkgutil, sys, ffdv_tui\n"
        "for m in pkgutil.walk_packages(ffdv_tui.__path__, 'ffdv_tui.'):\n"
        "    importlib.import_module(m.name)\n"
        f"for m in {TORCH_FREE!r}:\n"
        "    importlib.import_module(m)\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(HEAVY)!r})\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr
