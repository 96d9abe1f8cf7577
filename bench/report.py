"""How every benchmark ends: its numbers as an aligned table on stdout and as JSON under .bench/."""

from __future__ import annotations

import json
from pathlib import Path


def report(results: dict[str, float | int | str], json_path: Path) -> None:
    width = max(len(k) for k in results)
    for key, value in results.items():
        shown = f"{value:,.3f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else value
        print(f"{key:<{width}}  {shown}")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2))
