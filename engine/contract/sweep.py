"""A sweep file: a run's config TOML plus a ``[sweep]`` table of settings to vary.

```toml
[data]
root = "sample_data"
[sweep]
"optim.lr" = [0.001, 0.003]
"model.name" = ["resnet18", "efficientnet_b0"]
# mode = "random"   # with count = N: N combinations drawn from the grid instead of all of them
```

``expand_sweep`` turns it into one checked ``Config`` per combination, each with a readable
name (``lr0.001-resnet18``), or raises a ``ConfigError`` naming the file, the line and the
setting before anything is queued. Torch-free: the model names are checked by the CLI.
"""

from __future__ import annotations

import difflib
import itertools
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.contract.config import SECTIONS, Config, _field_types, _line_of, apply_values, check_config
from engine.contract.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SWEEP_SECTION = "sweep"
MODES = ("grid", "random")
OPTIONS = ("mode", "count", "seed", "name")  # keys of [sweep] that are not settings
MAX_RUNS = 1000  # more is a typo (a list too long), not a night's work
# Short names for the settings most often swept; any other setting is named by its key.
SHORT_NAMES = {
    "optim.lr": "lr", "optim.weight_decay": "wd", "train.batch_size": "bs", "data.img_size": "px",
    "train.epochs": "ep", "optim.label_smoothing": "ls", "model.drop_rate": "drop", "model.drop_path_rate": "dpr",
    "train.seed": "seed", "optim.warmup_epochs": "warm", "optim.accum_steps": "accum",
}
NAMED_BY_VALUE = ("model.name",)  # the value alone says which setting it is


@dataclass(frozen=True)
class SweepRun:
    name: str
    config: Config
    values: dict[str, Any]  # the swept settings of this combination


def setting_names() -> list[str]:
    return [f"{section}.{key}" for section in SECTIONS for key in _field_types(section)]


def _parse(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: sweep file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the sweep file ({exc})") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = f"{path}:{line.group(1)}" if line else str(path)
        raise ConfigError(f"{where}: not valid TOML: {exc}. Fix that line (strings need quotes, lists "
                          "brackets: \"optim.lr\" = [0.001, 0.003]).") from None


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": [..]}}`` (an unquoted dotted key) as ``{"optim.lr": [..]}``."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _sweep_line(text: str, name: str) -> int | None:
    return _line_of(text, SWEEP_SECTION, name) or _line_of(text, SWEEP_SECTION, name.split(".")[-1])


def _check_axes(path: Path, text: str, sweep: dict[str, Any]) -> dict[str, list[Any]]:
    known = setting_names()
    axes: dict[str, list[Any]] = {}
    for name, values in _flatten({k: v for k, v in sweep.items() if k not in OPTIONS}).items():
        where = f"{path}:{_sweep_line(text, name) or _line_of(text, SWEEP_SECTION, None) or 1}"
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else "settings are named section.key, e.g. optim.lr"
            raise ConfigError(f"{where}: [sweep] unknown setting {name!r}; {hint}")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: [sweep] {name} must be a list of values to try, e.g. "
                              f"\"{name}\" = [{values!r}, ...]")
        axes[name] = values
    if not axes:
        raise ConfigError(f"{path}: [sweep] names no setting to vary. Fix: add a line such as "
                          "\"optim.lr\" = [0.001, 0.003]")
    return axes


def _combinations(path: Path, sweep: dict[str, Any], axes: dict[str, list[Any]]) -> list[tuple[Any, ...]]:
    mode = sweep.get("mode", "grid")
    if mode not in MODES:
        raise ConfigError(f"{path}: [sweep] mode = {mode!r} is not one of {', '.join(MODES)}")
    grid = list(itertools.product(*axes.values()))
    if mode == "grid":
        if "count" in sweep:
            raise ConfigError(f"{path}: [sweep] count applies to mode = \"random\"; a grid runs every combination")
        chosen = grid
    else:
        count = sweep.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= len(grid):
            raise ConfigError(f"{path}: [sweep] mode = \"random\" needs count = N, from 1 to {len(grid)} "
                              "(the number of combinations)")
        seed = sweep.get("seed", 0)
        chosen = random.Random(seed if isinstance(seed, int) else 0).sample(grid, count)
    if len(chosen) > MAX_RUNS:
        raise ConfigError(f"{path}: [sweep] makes {len(chosen)} runs, more than {MAX_RUNS}; shorten a list or use "
                          "mode = \"random\" with count = N")
    return chosen


def _value_text(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value).lower() if isinstance(value, bool) else str(value)
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text)


def run_name(values: dict[str, Any], prefix: str = "") -> str:
    """``lr0.001-resnet18``: each swept setting by its short name and value, the model by its name."""
    parts = [_value_text(v) if k in NAMED_BY_VALUE else f"{SHORT_NAMES.get(k, k.split('.')[-1])}{_value_text(v)}"
             for k, v in values.items()]
    name = "-".join(([prefix] if prefix else []) + parts).lstrip("._+-") or "sweep"
    return name[:120]


def expand_sweep(path: Path | str) -> list[SweepRun]:
    """Every combination as a checked config: one bad combination raises, naming its setting."""
    path = Path(path)
    text, values = _parse(path)
    sweep = values.pop(SWEEP_SECTION, None)
    if not isinstance(sweep, dict):
        raise ConfigError(f"{path}: no [sweep] table. Fix: add one whose keys are settings and whose values are "
                          "lists, e.g. [sweep] \"optim.lr\" = [0.001, 0.003]")
    values.pop("meta", None)
    base = apply_values(Config(), values, str(path), text)
    axes = _check_axes(path, text, sweep)
    prefix = _value_text(sweep.get("name", base.run.name or ""))
    runs: list[SweepRun] = []
    for combination in _combinations(path, sweep, axes):
        chosen = dict(zip(axes, combination))
        name = run_name(chosen, prefix)
        config = apply_values(Config(), values, str(path), text)
        try:
            apply_values(config, chosen)
            check_config(config)
        except ConfigError as exc:
            shown = ", ".join(f"{k} = {v!r}" for k, v in chosen.items())
            raise ConfigError(f"{path}: [sweep] combination {name} ({shown}): {exc}. Nothing was queued.") from None
        config.run.name = name
        runs.append(SweepRun(name, config, chosen))
    return runs
