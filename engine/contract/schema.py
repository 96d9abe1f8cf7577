"""Typed records from JSON objects: each field's value is checked against its dataclass annotation.

A run folder is written by one program and read by others, possibly damaged or forged
(``"world_size": null``). Decoding checks every known field once, here, so code that
reads a typed record can trust its types; a field of the wrong type is reported and
left out instead of raising a TypeError far away in a viewer.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass
from typing import Any

_NONE = type(None)
# JSON value types each annotation accepts (an int is a fine float; a bool is neither).
_ACCEPTS: dict[Any, frozenset[type]] = {
    int: frozenset({int}),
    float: frozenset({int, float}),
    str: frozenset({str}),
    bool: frozenset({bool}),
    dict: frozenset({dict}),
    list: frozenset({list}),
    tuple: frozenset({list, tuple}),
}
_NAMES = {_NONE: "null", int: "an integer", float: "a number", str: "a string", bool: "true or false",
          dict: "an object", list: "a list", tuple: "a list"}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    accepts: frozenset[type] | None  # None: any value
    required: bool


def _accepts(annotation: Any) -> frozenset[type] | None:
    if annotation is Any:
        return None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        parts = [_accepts(arg) for arg in typing.get_args(annotation)]
        return None if any(p is None for p in parts) else frozenset().union(*parts)
    if annotation is _NONE or annotation is None:
        return frozenset({_NONE})
    base = origin or annotation
    if base is typing.ClassVar:
        return None
    if base in _ACCEPTS:
        return _ACCEPTS[base]
    for kind, accepted in _ACCEPTS.items():
        if isinstance(base, type) and issubclass(base, kind):
            return accepted
    return None


@functools.cache
def field_specs(cls: type, skip: frozenset[str] = frozenset()) -> tuple[FieldSpec, ...]:
    """The checked fields of a dataclass (those in ``skip`` left out), from its resolved annotations."""
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        specs.append(FieldSpec(f.name, _accepts(hints[f.name]), required))
    return tuple(specs)


def describe_type(value: Any) -> str:
    return _NAMES.get(type(value), type(value).__name__)


def expected(accepts: frozenset[type]) -> str:
    names = sorted({_NAMES.get(t, t.__name__) for t in accepts if t is not int or float not in accepts})
    return " or ".join(names)


def checked_fields(specs: tuple[FieldSpec, ...], data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(the fields of ``data`` whose types fit, those that do not, one sentence per problem).

    A required field that is missing is a problem too; the caller decides what a record
    without it is.
    """
    good: dict[str, Any] = {}
    bad: dict[str, Any] = {}
    problems: list[str] = []
    for spec in specs:
        if spec.name not in data:
            if spec.required:
                problems.append(f"field {spec.name!r} is missing")
            continue
        value = data[spec.name]
        if spec.accepts is None or type(value) in spec.accepts:
            good[spec.name] = value
        else:
            bad[spec.name] = value
            problems.append(f"field {spec.name!r} should be {expected(spec.accepts)}, not {describe_type(value)}; left out")
    return good, bad, problems


def missing_required(specs: tuple[FieldSpec, ...], good: dict[str, Any]) -> bool:
    return any(spec.required and spec.name not in good for spec in specs)
