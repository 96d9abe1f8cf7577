"""Perturbation specs for the evaluation matrix: ``jpeg:60``, ``resize:0.7+jpeg:75``, the ``standard`` suite.

Torch-free, so the app's evaluation form checks a spec while it is typed, in the engine's
words. A spec that does not parse names the token and every accepted form.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.contract.errors import FfdvError

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

NONE = "none"

# kind -> (what the number means, lowest, highest, lowest included, integer)
KINDS: dict[str, tuple[str, float, float, bool, bool]] = {
    "jpeg": ("re-compress as JPEG at quality Q", 1, 100, True, True),
    "resize": ("down-scale by F and back to the original size", 0.0, 1.0, False, False),
    "blur": ("Gaussian blur of sigma S pixels", 0.0, 20.0, False, False),
    "noise": ("add Gaussian noise of sigma S (0-1 scale), seeded per image", 0.0, 1.0, False, False),
    "crop": ("keep the centre F of each side", 0.0, 1.0, False, False),
}
LETTERS = {"jpeg": "Q", "resize": "F", "blur": "S", "noise": "S", "crop": "F"}

STANDARD_SUITE = (
    "none", "jpeg:90", "jpeg:75", "jpeg:50", "resize:0.5", "blur:1", "blur:2", "noise:0.02", "noise:0.05",
    "crop:0.8", "resize:0.5+jpeg:75",
)
SUITES = {"standard": STANDARD_SUITE}


class PerturbationError(FfdvError):
    pass


def accepted_forms() -> str:
    kinds = "; ".join(
        f"{k}:{LETTERS[k]} ({what}, {int(lo) if integer else lo:g}{'-' if low_in else '<' + LETTERS[k] + '<='}{hi:g})"
        for k, (what, lo, hi, low_in, integer) in KINDS.items()
    )
    return (f"accepted: none; {kinds}; chains joined with '+' (resize:0.5+jpeg:75); the suite "
            f"{', '.join(repr(s) for s in SUITES)}; or a .toml file with perturbations = [...]")


@dataclass(frozen=True)
class Step:
    kind: str
    value: float

    @property
    def text(self) -> str:
        return f"{self.kind}:{int(self.value) if KINDS[self.kind][4] else f'{self.value:g}'}"


@dataclass(frozen=True)
class Perturbation:
    """A chain of steps, applied left to right; no steps is the clean row."""

    steps: tuple[Step, ...] = ()

    @property
    def name(self) -> str:
        return "+".join(s.text for s in self.steps) or NONE

    @property
    def is_clean(self) -> bool:
        return not self.steps

    @property
    def jpeg_quality(self) -> int | None:
        """The quality of a JPEG-only row (the x axis of AUC-against-quality charts)."""
        if len(self.steps) == 1 and self.steps[0].kind == "jpeg":
            return int(self.steps[0].value)
        return None


def _step(token: str, spec: str) -> Step:
    kind, sep, number = token.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS or not sep:
        reason = f"unknown perturbation {kind!r}" if kind not in KINDS else f"{kind!r} needs a value ({kind}:{LETTERS[kind]})"
        raise PerturbationError(f"{spec!r}: {reason} in token {token!r}; {accepted_forms()}")
    what, lo, hi, low_in, integer = KINDS[kind]
    try:
        value = float(number)
    except ValueError:
        raise PerturbationError(f"{spec!r}: {number!r} in token {token!r} is not a number; {accepted_forms()}") from None
    in_range = math.isfinite(value) and (lo <= value if low_in else lo < value) and value <= hi
    if in_range and integer and value != int(value):  # int() of inf or nan raises: only finite values get here
        in_range = False
    if not in_range:
        bounds = f"{int(lo) if integer else lo:g} to {hi:g}" + (" (whole numbers)" if integer else f", above {lo:g}")
        raise PerturbationError(f"{spec!r}: {kind} value {number!r} in token {token!r} is out of range ({bounds}); "
                                f"{kind}:{LETTERS[kind]} means: {what}; {accepted_forms()}")
    return Step(kind, canonical(value))


def canonical(value: float) -> float:
    """The value as its name shows it (6 significant digits): blur:1 and blur:1.0000001 are one row, not two rows
    that print alike."""
    canon = float(f"{value:g}")
    return canon if canon > 0 or value == 0 else value


def parse_perturbation(spec: str) -> Perturbation:
    """One spec: ``none``, ``jpeg:60`` or a chain ``resize:0.5+jpeg:75``."""
    text = spec.strip()
    if text.lower() == NONE:
        return Perturbation()
    if not text:
        raise PerturbationError(f"an empty perturbation spec; {accepted_forms()}")
    tokens = text.split("+")
    if any(not t.strip() for t in tokens):
        raise PerturbationError(f"{spec!r}: an empty step between '+' signs; {accepted_forms()}")
    return Perturbation(tuple(_step(t.strip(), spec) for t in tokens))


def parse_suite(specs: list[str] | tuple[str, ...] | str) -> list[Perturbation]:
    """What ``--perturb`` takes: specs, named suites, comma lists and TOML files; the clean row first, no repeats."""
    if isinstance(specs, str):
        specs = [specs]
    found: list[Perturbation] = []
    for item in specs:
        for part in _expand(item):
            if part not in found:
                found.append(part)
    clean = Perturbation()
    return [clean] + [p for p in found if not p.is_clean]


def _expand(item: str, seen: tuple[Path, ...] = ()) -> list[Perturbation]:
    item = item.strip()
    if item.lower().endswith(".toml"):
        path = Path(item)
        return [p for spec in suite_file(path, seen) for p in _expand(spec, (*seen, _identity(path)))]
    if item.lower() in SUITES:
        return [parse_perturbation(s) for s in SUITES[item.lower()]]
    if "," in item:
        return [p for part in item.split(",") if part.strip() for p in _expand(part, seen)]
    return [parse_perturbation(item)]


def _identity(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def suite_file(path: Path, seen: tuple[Path, ...] = ()) -> list[str]:
    """A TOML suite: ``perturbations = ["none", "jpeg:60", "resize:0.5+jpeg:75"]`` (may name ``standard`` or another
    suite file, but not itself: a cycle is refused, naming the files)."""
    if _identity(path) in seen:
        chain = " -> ".join(str(p) for p in (*seen, _identity(path)))
        raise PerturbationError(f"{path}: this suite file names itself through {chain}. Fix: list specs in it "
                                "instead of the file that includes it")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PerturbationError(f"{path}: suite file not found. Fix: pass an existing .toml file") from None
    except RecursionError:
        raise PerturbationError(f"{path}: not a readable TOML file (nested too deeply)") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PerturbationError(f"{path}: not a readable TOML file ({exc})") from None
    specs = data.get("perturbations")
    if not isinstance(specs, list) or not specs or not all(isinstance(s, str) for s in specs):
        raise PerturbationError(f'{path}: expected perturbations = ["none", "jpeg:60", ...] (a list of specs). '
                                f"Fix: write that line; {accepted_forms()}")
    for spec in specs:
        try:
            _expand(spec, (*seen, _identity(path)))
        except PerturbationError as exc:
            raise PerturbationError(f"{path}: {exc}") from None
    return specs


def check_spec(text: str) -> str | None:
    """For a form: None when ``text`` parses, else the message."""
    try:
        parse_suite([text])
    except PerturbationError as exc:
        return str(exc)
    return None
