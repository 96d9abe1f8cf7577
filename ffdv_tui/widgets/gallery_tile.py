"""One image of the gallery: its thumbnail, and its score and true label under it."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from engine.contract.text import printable
from ffdv_tui.widgets.image_preview import image_widget

TILE_WIDTH = 26
TILE_HEIGHT = 12


class GalleryTile(Vertical):
    DEFAULT_CSS = f"""
    GalleryTile {{
        width: {TILE_WIDTH};
        height: {TILE_HEIGHT};
        border: round $panel;
    }}
    GalleryTile.-highlight {{
        border: round $accent;
    }}
    GalleryTile > .tile-picture {{
        height: 1fr;
    }}
    GalleryTile > .tile-caption {{
        height: 2;
    }}
    """

    def __init__(self, position: int, name: str, caption: Text, mode: str) -> None:
        super().__init__()
        self.position, self.image_name, self.caption, self.mode = position, name, caption, mode

    def compose(self) -> ComposeResult:
        if self.mode == "none":
            yield Static(Text(printable(self.image_name, 40), style="dim"), classes="tile-picture")
        else:
            yield image_widget(self.mode)(classes="tile-picture")
        yield Static(self.caption, classes="tile-caption")

    def set_picture(self, item) -> None:
        """A thumbnail, or the reason there is none (then shown in place of the picture's caption)."""
        if self.mode == "none":
            return
        if isinstance(item, str):
            self.query_one(".tile-caption", Static).update(Text.assemble(self.caption, "\n", (printable(item), "red")))
        else:
            self.query_one(".tile-picture").image = item
