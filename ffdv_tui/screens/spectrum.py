"""The mean residual spectra of a split's real and fake images, their difference and radial power profiles.

numpy in a worker (``engine.data.spectrum``), a sample of N images per class with progress: a
generator's up-sampling grid shows as bright peaks in the fake mean and in the difference, and as
a bump in the fake curve at high radii.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, ProgressBar, Static
from textual.worker import get_current_worker
from textual_plotext import PlotextPlot

from engine.contract.fmt import fmt_count
from engine.contract.text import plain_text, printable
from engine.data.spectrum import ClassSpectra, class_spectra, log_spectrum, radial_profile, to_png
from ffdv_tui.widgets.image_preview import image_widget
from ffdv_tui.widgets.key_bar import KeyBar

SAMPLE = 100
PANES = ("real", "fake", "difference")


class SpectrumScreen(Screen):
    DEFAULT_CSS = """
    SpectrumScreen #spectra { height: 1fr; }
    SpectrumScreen .spectrum-pane { width: 1fr; }
    SpectrumScreen .spectrum-picture { height: 1fr; }
    SpectrumScreen .spectrum-caption { height: 1; }
    SpectrumScreen #radial { height: 1fr; }
    SpectrumScreen #spectrum-status { height: auto; }
    """
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    class Progress(Message):
        def __init__(self, done: int, total: int) -> None:
            super().__init__()
            self.done, self.total = done, total

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, SpectrumScreen.Progress)

    class Done(Message):
        def __init__(self, result: ClassSpectra | None, error: str | None = None) -> None:
            super().__init__()
            self.result, self.error = result, error

    def __init__(self, root: Path, split: str, images: str = "halfcell", sample: int = SAMPLE) -> None:
        super().__init__()
        self.root, self.split, self.images_mode, self.sample = root, split, images, sample
        self.result: ClassSpectra | None = None
        self.profiles: dict[str, np.ndarray] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="spectrum-status")
        yield ProgressBar(id="spectrum-progress", show_eta=False)
        with Horizontal(id="spectra"):
            for name in PANES:
                with Vertical(classes="spectrum-pane pane"):
                    if self.images_mode == "none":
                        yield Static("pictures are off (--images none)", id=f"pic-{name}", classes="spectrum-picture")
                    else:
                        yield image_widget(self.images_mode)(id=f"pic-{name}", classes="spectrum-picture")
                    yield Static(Text(name), id=f"cap-{name}", classes="spectrum-caption")
        yield PlotextPlot(id="radial", classes="pane")
        yield KeyBar()

    def on_mount(self) -> None:
        self.app.sub_title = f"spectra · {printable(self.root.name)} · {self.split}"
        self.query_one("#spectrum-status", Static).update(Text(
            f"mean log-power spectrum of the high-pass residual, up to {self.sample} images per class of the "
            f"{self.split} split; low frequencies in the middle"))
        self._compute()

    @work(thread=True, exclusive=True, group="spectra")
    def _compute(self) -> None:
        from engine.data.dataset import resolve_split

        worker = get_current_worker()
        try:
            split = resolve_split(self.root, self.split, None, check_files=False)
            result = class_spectra(split, self.sample, on_progress=lambda d, t: self.post_message(self.Progress(d, t)),
                                   should_stop=lambda: worker.is_cancelled)
        except Exception as exc:  # not a dataset, no such split: the engine's own words
            self.post_message(self.Done(None, str(exc)))
            return
        self.post_message(self.Done(result))

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        self.query_one(ProgressBar).update(total=max(message.total, 1), progress=message.done)

    @on(Done)
    def _done(self, message: Done) -> None:
        if message.result is None:
            self.query_one("#spectrum-status", Static).update(plain_text(message.error or "", "red", multiline=True))
            return
        self.result = result = message.result
        pictures = {name: log_spectrum(power) for name, power in result.mean_power.items()}
        difference = result.difference()
        if difference is not None:
            pictures["difference"] = difference
        for name in PANES:
            caption = f"{name} ({result.counts[name]} images)" if name in result.counts else name
            self.query_one(f"#cap-{name}", Static).update(Text(caption if name in pictures else f"{name}: none"))
            if name in pictures and self.images_mode != "none":
                self.query_one(f"#pic-{name}").image = to_png(pictures[name]).convert("RGB")
        self.profiles = {name: radial_profile(power) for name, power in result.mean_power.items()}
        self._plot()
        if result.unreadable:
            self.query_one("#spectrum-status", Static).update(plain_text(
                f"{fmt_count(len(result.unreadable), 'image')} could not be read, e.g. {next(iter(result.unreadable))}",
                "yellow"))

    def _plot(self) -> None:
        plt = self.query_one(PlotextPlot).plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("radial power of the residual (log10) by distance from the centre")
        for (name, profile), colour in zip(self.profiles.items(), ("cyan", "orange", "white"), strict=False):
            plt.plot(list(range(1, len(profile))), np.log10(profile[1:] + 1e-12).tolist(), label=name, color=colour,
                     marker="braille")
        plt.xlabel("frequency radius (cycles per crop)")
        self.query_one(PlotextPlot).refresh()
