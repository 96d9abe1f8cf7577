"""A gallery of the predictions screen's filtered images: thumbnails with score and true label, paged.

People scan mistakes by eye faster than row by row. As many tiles as the terminal fits; arrow
keys move the highlight, PageDown/PageUp turn pages, Enter opens the image in the predictions
screen's preview with its map. Thumbnails are decoded in a worker (the preview's cache).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Static

from ffdv_tui.widgets.gallery_tile import TILE_HEIGHT, TILE_WIDTH, GalleryTile
from ffdv_tui.widgets.image_preview import ThumbnailCache
from ffdv_tui.widgets.key_bar import KeyBar

LABELS = {0: "real", 1: "fake", -1: "–"}


class GalleryScreen(Screen[int | None]):
    """Dismissed with the frame index of the chosen image (None: back without one)."""

    DEFAULT_CSS = f"""
    GalleryScreen #gallery {{
        grid-size: 4;
        grid-columns: {TILE_WIDTH};
        grid-rows: {TILE_HEIGHT};
        height: 1fr;
    }}
    GalleryScreen #gallery-status {{
        height: 1;
    }}
    """
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("enter", "pick", "Open", tooltip="Open the highlighted image in the preview, with its map"),
        Binding("left", "move(-1)", "Left", show=False),
        Binding("right", "move(1)", "Right", show=False),
        Binding("up", "move_row(-1)", "Up", show=False),
        Binding("down", "move_row(1)", "Down", show=False),
        Binding("pagedown", "page(1)", "Next page"),
        Binding("pageup", "page(-1)", "Previous page"),
    ]

    class Thumbnail(Message):
        def __init__(self, page: int, position: int, item) -> None:
            super().__init__()
            self.page, self.position, self.item = page, position, item

    def __init__(self, view: pd.DataFrame, images: Path | None, mode: str = "halfcell",
                 cache: ThumbnailCache | None = None) -> None:
        super().__init__()
        self.view, self.images, self.mode = view, images, mode
        self.cache = cache or ThumbnailCache()
        self.page, self.highlight, self.per_page, self.columns = 0, 0, 1, 1

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="gallery-status")
        yield Grid(id="gallery")
        yield KeyBar()

    async def on_resize(self) -> None:
        grid = self.query_one("#gallery", Grid)
        columns = max(1, (self.size.width - 2) // TILE_WIDTH)
        rows = max(1, (self.size.height - 4) // TILE_HEIGHT)
        if (columns, columns * rows) != (self.columns, self.per_page):
            first = self.page * self.per_page + self.highlight
            self.columns, self.per_page = columns, columns * rows
            grid.styles.grid_size_columns = columns
            self.page, self.highlight = divmod(first, self.per_page)
            await self._show_page()

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.view) // self.per_page))

    async def _show_page(self) -> None:
        grid = self.query_one("#gallery", Grid)
        await grid.remove_children()
        start = self.page * self.per_page
        rows = self.view.iloc[start:start + self.per_page]
        tiles = []
        for position, (_, row) in enumerate(rows.iterrows()):
            caption = Text.assemble((f"{row['score']:.3f}", "bold"), f" true {LABELS.get(int(row['target']), '?')}",
                                    (" ✓" if row["correct"] else " ✗", "green" if row["correct"] else "bold red"))
            tiles.append(GalleryTile(position, str(row["img_name"]), caption, self.mode))
        await grid.mount_all(tiles)
        self.highlight = min(self.highlight, max(len(tiles) - 1, 0))
        self._mark()
        self.query_one("#gallery-status", Static).update(Text(
            f"{len(self.view):,} images · page {self.page + 1} of {self.pages} · {self.per_page} a page"))
        if self.mode != "none" and self.images is not None:
            self._thumbnails(self.page, [self.images / name for name in rows["img_name"].astype(str)])

    @work(thread=True, exclusive=True, group="gallery")
    def _thumbnails(self, page: int, paths: list[Path]) -> None:
        for position, path in enumerate(paths):
            self.post_message(self.Thumbnail(page, position, self.cache.load(path)))

    @on(Thumbnail)
    def _thumbnail(self, message: Thumbnail) -> None:
        if message.page != self.page:
            return
        tiles = list(self.query(GalleryTile))
        if message.position < len(tiles):
            tiles[message.position].set_picture(message.item)

    def _mark(self) -> None:
        for tile in self.query(GalleryTile):
            tile.set_class(tile.position == self.highlight, "-highlight")

    def action_move(self, delta: int) -> None:
        count = len(self.query(GalleryTile))
        if count:
            self.highlight = max(0, min(count - 1, self.highlight + delta))
            self._mark()

    def action_move_row(self, delta: int) -> None:
        self.action_move(delta * self.columns)

    async def action_page(self, delta: int) -> None:
        page = max(0, min(self.pages - 1, self.page + delta))
        if page != self.page:
            self.page, self.highlight = page, 0
            await self._show_page()

    def action_pick(self) -> None:
        position = self.page * self.per_page + self.highlight
        self.dismiss(self.view.index[position] if position < len(self.view) else None)

    def action_back(self) -> None:
        self.dismiss(None)
