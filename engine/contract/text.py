"""The one way untrusted text becomes terminal output.

Image names, run folder names, label-file headers, event messages and commands come from
files a user (or an attacker) wrote. Shown raw, an escape sequence in a name can retitle or
clear the terminal, and a ``[/]`` or ``[link=...]`` parsed as Rich/Textual markup crashes
the renderer or plants a live link. Every such string goes through :func:`printable`
(control characters become visible ``\\x1b``-style escapes, long text is cut in linear
time) and is then shown as plain text (:func:`plain_text`), never parsed as markup.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

# C0 controls, DEL, C1 controls, and the bidirectional overrides that reorder what a line shows.
_BIDI = [0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]}
_ESCAPES.update({c: f"\\u{c:04x}" for c in _BIDI})
_TAB_NEWLINE = {ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"}
_SINGLE_LINE = str.maketrans({**_ESCAPES, **_TAB_NEWLINE})
_MULTI_LINE = str.maketrans({k: v for k, v in _ESCAPES.items() if k not in (ord("\n"), ord("\t"))})

DEFAULT_LIMIT = 2000


def printable(value: Any, limit: int | None = DEFAULT_LIMIT, *, multiline: bool = False) -> str:
    """``value`` as text that is safe to print: control characters escaped, cut to ``limit`` characters.

    ``multiline`` keeps newlines and tabs (a log tail, a traceback); everything else is one line.
    The cut happens before escaping, so a megabyte message costs the same as ``limit`` characters.
    """
    text = value if isinstance(value, str) else str(value)
    cut = ""
    if limit is not None and len(text) > limit:
        cut = f"… ({len(text) - limit:,} more characters)"
        text = text[:limit]
    return text.translate(_MULTI_LINE if multiline else _SINGLE_LINE) + cut


def plain_text(value: Any, style: str = "", limit: int | None = DEFAULT_LIMIT, *, multiline: bool = False) -> Text:
    """A Rich ``Text`` holding :func:`printable` ``value``: never parsed as markup, safe in a table cell."""
    return Text(printable(value, limit, multiline=multiline), style=style)
