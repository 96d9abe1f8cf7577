"""printable(): the one way untrusted text reaches a terminal."""

from __future__ import annotations

import time

from rich.console import Console

from engine.contract.text import plain_text, printable


def test_control_characters_are_shown_escaped() -> None:
    assert printable("a\x1b]0;TITLE\x07b") == "a\\x1b]0;TITLE\\x07b"
    assert printable("x\x1b[2Jy\x9b") == "x\\x1b[2Jy\\x9b"
    assert printable("line1\nline2\t\r") == "line1\\nline2\\t\\r"
    assert printable("evil\u202etxt.jpg") == "evil\\u202etxt.jpg"


def test_multiline_keeps_newlines_but_escapes_the_rest() -> None:
    assert printable("a\nb\tc\x1b[31m", multiline=True) == "a\nb\tc\\x1b[31m"


def test_ordinary_text_is_unchanged() -> None:
    for s in ("photo 01.jpg", "лицо.png", "图像.jpg", "boom[/]", "[link=http://x]y[/link]", "é"):
        assert printable(s) == s


def test_long_text_is_cut_in_linear_time() -> None:
    big = "x" * 5_000_000
    start = time.perf_counter()
    out = printable(big, 100)
    assert time.perf_counter() - start < 1.0
    assert out.startswith("x" * 100) and "4,999,900 more characters" in out


def test_plain_text_is_never_markup() -> None:
    console = Console(record=True, width=200, color_system=None)
    console.print(plain_text("boom[/] [link=http://evil]x[/link] [bold]b[/bold]\x1b[2J"))
    out = console.export_text()
    assert "boom[/] [link=http://evil]x[/link] [bold]b[/bold]\\x1b[2J" in out
    assert "\x1b" not in out
