"""The selected image, drawn in the terminal, with its label, score and score history.

Pictures go through textual-image: half-cell blocks by default (any truecolor
terminal, over SSH and inside tmux), sixel or the kitty graphics protocol when asked
for, or none. Decoding happens in a worker and thumbnails are kept (least recently
used first out), so moving through a table never waits for a JPEG. A file that is
missing or cannot be decoded shows the reason instead of a picture.
"""

from __future__ import annotations

import fcntl
import io
import os
import struct
import sys
import termios
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Sparkline, Static

from engine.contract.text import printable
from engine.data.images import BadImage, open_rgb

THUMBNAIL = 384
CACHE_SIZE = 256
CELL_SIZE_VARIABLES = ("TEXTUAL_CELL_WIDTH", "TEXTUAL_CELL_HEIGHT")
IMAGE_WIDGETS = {"auto": "Image", "halfcell": "HalfcellImage", "sixel": "SixelImage", "tgp": "TGPImage"}


def image_widget(mode: str) -> type:
    """textual-image's widget for a preview mode, imported only when pictures are on.

    Importing textual-image asks the terminal about graphics and its cell size. ``ffdv-tui``
    does that before the app runs (``__main__``) for the modes that need the answers (auto,
    sixel, tgp); asked later, while Textual reads the keyboard, the terminal's answers
    arrive as key presses (a ``?`` opened the keys screen). Half cells need no answer, so
    the default mode imports it here, on first use, without a question (``quietly``): the
    first frame does not wait for textual-image, PIL and numpy. With ``--images none`` it
    is never imported.
    """
    if mode == "halfcell" and "textual_image.widget" not in sys.modules:
        with quietly():
            import textual_image.widget
    import textual_image.widget

    return getattr(textual_image.widget, IMAGE_WIDGETS[mode])


class _NotATerminal:
    """The real stdout, except that it says it is no terminal (so textual-image asks it nothing)."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextmanager
def quietly():
    """Import textual-image without questions: no graphics query, and the cell size from the kernel's window size.

    textual-image asks only a terminal (``sys.__stdout__.isatty()``) and otherwise takes the
    cell size from ``TEXTUAL_CELL_WIDTH``/``HEIGHT`` (its way for textual-serve). The size in
    pixels that the terminal told the kernel gives those (no question); where it told none,
    textual-image assumes 10x20 pixels, which only changes a half-cell picture's aspect a little.
    Textual writes to stderr, so stdout looks like no terminal for the moment of the import only.
    """
    saved_env = {key: os.environ.get(key) for key in CELL_SIZE_VARIABLES}
    stdout = sys.__stdout__
    try:
        if stdout is not None and not all(saved_env.values()):
            cell = cell_size_from_the_kernel(stdout)
            if cell is not None:
                os.environ.update(zip(CELL_SIZE_VARIABLES, map(str, cell)))
        if stdout is not None:
            sys.__stdout__ = _NotATerminal(stdout)
        yield
    finally:
        sys.__stdout__ = stdout
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def cell_size_from_the_kernel(stream) -> tuple[int, int] | None:
    """(width, height) of a character cell in pixels, from TIOCGWINSZ; None where the terminal reported no pixels."""
    try:
        rows, columns, width, height = struct.unpack("HHHH", fcntl.ioctl(stream.fileno(), termios.TIOCGWINSZ, bytes(8)))
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None
    if not (rows and columns and width >= columns and height >= rows):
        return None
    return width // columns, height // rows


class ThumbnailCache:
    """Decoded, shrunk images by path; errors are remembered too (as their reason)."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self._items: OrderedDict[Path, PILImage.Image | str] = OrderedDict()

    def get(self, path: Path) -> PILImage.Image | str | None:
        item = self._items.get(path)
        if item is not None:
            self._items.move_to_end(path)
        return item

    def load(self, path: Path) -> PILImage.Image | str:
        item = self.get(path)
        if item is None:
            try:
                image = open_rgb(path, THUMBNAIL)
                image.thumbnail((THUMBNAIL, THUMBNAIL))
                item = image
            except BadImage as exc:
                item = f"{path.name}: {exc}"
            self._items[path] = item
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return item


class ImagePreview(Vertical):
    """Picture, caption and sparkline of one image; ``show`` is cheap, decoding is not done here."""

    DEFAULT_CSS = """
    ImagePreview {
        padding: 0 1;
    }
    ImagePreview > #picture {
        height: 1fr;
        width: 100%;
    }
    ImagePreview > #caption {
        height: auto;
        max-height: 4;
    }
    ImagePreview > #history {
        height: 2;
    }
    ImagePreview > #history-caption {
        height: 1;
    }
    """

    @dataclass
    class Decoded(Message):
        """A thumbnail (or the reason there is none) is ready for ``path``."""

        path: Path
        item: PILImage.Image | str

    def __init__(self, mode: str = "halfcell", cache: ThumbnailCache | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mode = mode
        self.cache = cache or ThumbnailCache()
        self._path: Path | None = None
        self._caption = Text()

    def compose(self) -> ComposeResult:
        if self.mode == "none":
            yield Static("previews are off (--images none)", id="picture", classes="picture-off")
        else:
            yield image_widget(self.mode)(id="picture")
        yield Static(id="caption")
        yield Sparkline([], id="history")
        yield Static(id="history-caption")

    def show(self, path: Path | None, caption: Text, history: list[tuple[int, float]]) -> None:
        self._caption = caption
        self.query_one("#caption", Static).update(caption)
        spark = self.query_one("#history", Sparkline)
        spark.data = [score for _, score in history] if len(history) > 1 else []
        text = ""
        if len(history) > 1:
            text = f"score over epochs {history[0][0]}–{history[-1][0]}: " + " → ".join(
                f"{s:.2f}" for _, s in (history[:1] + history[-1:]))
        self.query_one("#history-caption", Static).update(Text(text, style="dim"))
        self._path = path
        if self.mode == "none" or path is None:
            return
        cached = self.cache.get(path)
        if cached is not None:
            self._draw(path, cached)
        else:
            self.query_one("#picture").image = None
            self._decode(path)

    @work(thread=True, exclusive=True, group="thumbnail")
    def _decode(self, path: Path) -> None:
        self.post_message(self.Decoded(path, self.cache.load(path)))

    @on(Decoded)
    def _decoded(self, message: Decoded) -> None:
        self._draw(message.path, message.item)

    def _draw(self, path: Path, item: PILImage.Image | str) -> None:
        if path != self._path:
            return  # the cursor has moved on
        picture = self.query_one("#picture")
        if isinstance(item, str):  # the reason it cannot be shown, under the caption
            picture.image = None
            self.query_one("#caption", Static).update(Text.assemble(self._caption, "\n", (printable(item), "red")))
        else:
            picture.image = item
