"""The runs list's filter (``/``) and sort: plain functions over frozen snapshots, instant for hundreds of runs.

A filter is words, all of which must hold. A bare word matches the name, status or model
(case-insensitive, ``*`` and ``?`` as wildcards). ``KEY OP VALUE`` tests a field: ``OP`` is one
of ``= != > >= < <=``; ``KEY`` is ``name``, ``status``, ``model``, a metric (its best value over
the validations: ``auc>0.8``, ``loss<0.5``) or a setting by its dotted name or last part
(``optim.lr<=0.001``, ``lr=0.001``, ``model=resnet*``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.contract.protocol import METRIC_LABELS
from ffdv_tui.run_snapshot import RunSnapshot

SORTS = ("newest", "best AUC", "name")
_CONDITION = re.compile(r"^([A-Za-z_][\w.@-]*)\s*(>=|<=|!=|=|>|<)\s*(.*)$")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


class FilterError(ValueError):
    """A filter that cannot be read; the message says which word and what would work."""


@dataclass(frozen=True)
class Condition:
    key: str
    op: str
    value: str

    def holds(self, run: RunSnapshot) -> bool:
        found = field_value(run, self.key)
        if self.op in _COMPARE:
            number = _number(self.value)
            return isinstance(found, (int, float)) and not isinstance(found, bool) and _COMPARE[self.op](found, number)
        matches = _matches(found, self.value)
        return matches if self.op == "=" else not matches


@dataclass(frozen=True)
class Word:
    pattern: str

    def holds(self, run: RunSnapshot) -> bool:
        return any(_matches(text, f"*{self.pattern}*" if not _wild(self.pattern) else self.pattern)
                   for text in (run.name, run.status, run.model))


def _wild(text: str) -> bool:
    return any(c in text for c in "*?[")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _matches(found: Any, pattern: str) -> bool:
    if found is None:
        return False
    if isinstance(found, (int, float)) and not isinstance(found, bool) and _number(pattern) is not None:
        return float(found) == _number(pattern)
    return fnmatch.fnmatchcase(str(found).lower(), pattern.lower())


def field_value(run: RunSnapshot, key: str) -> Any:
    """What a filter key names in a run: its name, status, model, best metric, or a setting."""
    key = key.lower()
    if key in ("name", "run"):
        return run.name
    if key == "status":
        return str(run.status)
    if key == "model":
        return run.model
    if key in METRIC_LABELS or any(key == label.lower() for label in METRIC_LABELS.values()):
        metric = key if key in METRIC_LABELS else next(m for m, label in METRIC_LABELS.items() if label.lower() == key)
        return run.best(metric)
    if key in run.settings:
        return run.settings[key]
    for name, value in run.settings.items():
        if name.rsplit(".", 1)[-1] == key:
            return value
    return None


def parse_filter(text: str) -> Callable[[RunSnapshot], bool]:
    """A predicate from the filter's text; an empty text lets every run through."""
    parts: list[Condition | Word] = []
    for word in text.split():
        match = _CONDITION.match(word)
        if match is None:
            if any(op in word for op in "<>=!"):
                raise FilterError(f"{word!r}: a condition is KEY OP VALUE, e.g. auc>0.8 or model=resnet*")
            parts.append(Word(word))
            continue
        key, op, value = match.groups()
        if not value:
            raise FilterError(f"{word!r}: no value after {op!r} (e.g. {key}{op}0.8)")
        if op in _COMPARE and _number(value) is None:
            raise FilterError(f"{word!r}: {op} compares numbers; {value!r} is not one (use = for names)")
        parts.append(Condition(key, op, value))
    return lambda run: all(part.holds(run) for part in parts)


def sort_runs(runs: Sequence[RunSnapshot], sort: str) -> list[RunSnapshot]:
    """``runs`` arrive newest first; "best AUC" puts the highest first (runs without one last), "name" A to Z."""
    if sort == "name":
        return sorted(runs, key=lambda r: r.name.lower())
    if sort == "best AUC":
        scored = [(r.best("auc"), i, r) for i, r in enumerate(runs)]
        return [r for _, _, r in sorted(scored, key=lambda t: (t[0] is None, -(t[0] or 0.0), t[1]))]
    return list(runs)


def shown_runs(runs: Sequence[RunSnapshot], query: str, sort: str) -> list[RunSnapshot]:
    """The runs the list shows: those the filter lets through, in the chosen order. A bad filter raises FilterError."""
    keep = parse_filter(query)
    return sort_runs([r for r in runs if keep(r)], sort)
