"""The image preview that flips between an image, its class-activation map (where the model looks for fake) and
its residual spectrum (where a generator's up-sampling grid shows as peaks).

The spectrum is numpy work in a worker. A map is computed by an engine job in a worker (``ffdv_tui.explain_maps``) the first time it is
asked for, then kept per checkpoint and image: flipping back and forth, or coming back to an
image, is instant. While the map is on, moving to another image asks for that image's map.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from PIL import Image as PILImage
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from engine.contract.text import printable
from engine.data.images import BadImage, open_rgb
from engine.data.spectrum import SPECTRUM_SIZE, gray_crop, log_spectrum, power_spectrum, to_png
from ffdv_tui.explain_maps import MapCache, MapKey, compute_maps, map_key
from ffdv_tui.widgets.image_preview import ImagePreview

SPECTRA_KEPT = 64


def spectrum_picture(path: Path) -> PILImage.Image | str:
    """The image's log-power residual spectrum as a gray picture, or why there is none."""
    try:
        image = open_rgb(path)
    except BadImage as exc:
        return f"{path.name}: {exc}"
    return to_png(log_spectrum(power_spectrum(gray_crop(image)))).convert("RGB")


class ExplainedPreview(ImagePreview):
    """``toggle_map`` flips the picture between the image and its map; ``checkpoint`` says which model explains."""

    DEFAULT_CSS = """
    ExplainedPreview > #map-status {
        height: auto;
        max-height: 3;
    }
    """

    class MapReady(Message):
        """Maps (or the reasons there are none) for some images under one checkpoint."""

        def __init__(self, items: dict[MapKey, PILImage.Image | str]) -> None:
            super().__init__()
            self.items = items

    class SpectrumReady(Message):
        """An image's residual spectrum (or the reason there is none)."""

        def __init__(self, path: Path, item: PILImage.Image | str) -> None:
            super().__init__()
            self.path = path
            self.item = item

    def __init__(self, mode: str = "halfcell", checkpoint: Callable[[], Path | None] | None = None,
                 maps: MapCache | None = None, **kwargs) -> None:
        super().__init__(mode, **kwargs)
        self.checkpoint = checkpoint or (lambda: None)
        self.maps = maps or MapCache()
        self.spectra: OrderedDict[Path, PILImage.Image | str] = OrderedDict()
        self.view = "image"  # or "map" or "spectrum"
        self.map_status = ""  # what the line under the picture says: computing, shown, or why not

    @property
    def showing_map(self) -> bool:
        return self.view == "map"

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield Static(id="map-status")

    def on_mount(self) -> None:
        self.query_one("#map-status").display = False

    def toggle_map(self) -> None:
        self.view = "image" if self.view == "map" else "map"
        self._show_view()

    def toggle_spectrum(self) -> None:
        self.view = "image" if self.view == "spectrum" else "spectrum"
        self._show_view()

    def _show_view(self) -> None:
        if self.view == "map":
            self._show_map()
        elif self.view == "spectrum":
            self._show_spectrum()
        else:
            self._map_line("")
            if self._path is not None and self.mode != "none":
                cached = self.cache.get(self._path)
                if cached is not None:
                    super()._draw(self._path, cached)
                else:
                    self._decode(self._path)

    def show(self, path: Path | None, caption: Text, history: list[tuple[int, float]]) -> None:
        super().show(path, caption, history)
        if self.view != "image":
            self._show_view()

    def _draw(self, path: Path, item: PILImage.Image | str) -> None:
        if self.view != "image" and not isinstance(item, str):
            return  # a map or spectrum is on: a decoded image does not cover it (a reason it cannot be decoded still shows)
        super()._draw(path, item)

    # ------------------------------------------------------------ the spectrum (numpy, in a worker)

    def _show_spectrum(self) -> None:
        if self._path is None:
            return
        cached = self.spectra.get(self._path)
        if cached is not None:
            self._draw_spectrum(self._path, cached)
            return
        if self.mode != "none":
            self.query_one("#picture").image = None
        self._map_line("computing the spectrum …", "yellow")
        self._spectrum(self._path)

    @work(thread=True, exclusive=True, group="spectrum")
    def _spectrum(self, path: Path) -> None:
        self.post_message(self.SpectrumReady(path, spectrum_picture(path)))

    @on(SpectrumReady)
    def _spectrum_ready(self, message: SpectrumReady) -> None:
        self.spectra[message.path] = message.item
        while len(self.spectra) > SPECTRA_KEPT:
            self.spectra.popitem(last=False)
        if self.view == "spectrum":
            self._draw_spectrum(message.path, message.item)

    def _draw_spectrum(self, path: Path, item: PILImage.Image | str) -> None:
        if path == self._path:
            self._draw_computed(item, f"spectrum · log |FFT| of the high-pass residual, centre {SPECTRUM_SIZE} "
                                      "px, low frequencies in the middle")

    def _draw_computed(self, item: PILImage.Image | str, caption: str) -> None:
        """A computed picture (map or spectrum) with its caption, or in red why there is none (``item`` a str)."""
        failed = isinstance(item, str)
        if self.mode != "none":
            self.query_one("#picture").image = None if failed else item
        self._map_line(item if failed else caption, "red" if failed else "cyan")

    # ------------------------------------------------------------ the map (an engine job)

    def _current_key(self) -> MapKey | str | None:
        if self._path is None:
            return None
        checkpoint = self.checkpoint()
        if checkpoint is None:
            return "no checkpoint of this validation is kept, so there is no model to explain it with"
        return map_key(checkpoint, self._path)

    def _show_map(self) -> None:
        key = self._current_key()
        if key is None:
            return
        if isinstance(key, str):
            self._map_line(key, "red")
            return
        cached = self.maps.get(key)
        if cached is not None:
            self._draw_map(key, cached)
            return
        if self.mode != "none":
            self.query_one("#picture").image = None
        self._map_line(f"computing the map of {Path(key.checkpoint).stem} …", "yellow")
        self._compute(self.checkpoint(), key)

    @work(thread=True, exclusive=True, group="explain-map")
    def _compute(self, checkpoint: Path, key: MapKey) -> None:
        worker = get_current_worker()
        items = compute_maps(checkpoint, [key], self.maps.folder, should_stop=lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.post_message(self.MapReady(items))

    @on(MapReady)
    def _map_ready(self, message: MapReady) -> None:
        for key, item in message.items.items():
            self.maps.put(key, item)
        key = self._current_key()
        if self.showing_map and isinstance(key, MapKey):
            if key in message.items:
                self._draw_map(key, message.items[key])
            elif self.maps.get(key) is None:
                self._show_map()  # the checkpoint changed while the job ran: explain again

    def _draw_map(self, key: MapKey, item: PILImage.Image | str) -> None:
        self._draw_computed(item, f"map · Grad-CAM toward fake · {Path(key.checkpoint).stem}")

    def _map_line(self, text: str, style: str = "") -> None:
        self.map_status = text
        status = self.query_one("#map-status", Static)
        status.update(Text(printable(text), style=style))
        status.display = bool(text)
