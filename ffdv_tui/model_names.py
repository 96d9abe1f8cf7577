"""timm's model names for the new-run form, without importing timm here.

The engine lists them once (``python -m engine models --json``, a few seconds); the
list is cached per timm version under ``$XDG_CACHE_HOME/ffdv-tui`` and read in
milliseconds afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def cache_path() -> Path:
    from importlib import metadata  # 10-20 ms to import, and only the new-run form needs it

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    try:
        version = metadata.version("timm")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return base / "ffdv-tui" / f"timm-models-{version}.json"


def cached_model_names() -> list[str] | None:
    try:
        names = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return None
    return names if isinstance(names, list) and names else None


def fetch_model_names(timeout: float = 120.0) -> list[str]:
    """Ask the engine (a separate process: timm never loads in the app) and cache the answer."""
    result = subprocess.run([sys.executable, "-m", "engine", "models", "--json"], capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "engine failed")
    names = json.loads(result.stdout)
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(names))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home still gets the names, just not cached
    return names


def model_names() -> list[str]:
    return cached_model_names() or fetch_model_names()
