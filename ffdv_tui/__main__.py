"""``ffdv-tui [--data DIR] [--runs DIR] [--images MODE]``: the workbench."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
from pathlib import Path

IMAGE_MODES = ("auto", "halfcell", "sixel", "tgp", "none")
QUESTIONED_MODES = ("auto", "sixel", "tgp")  # they need the terminal's answers; half cells do not (see image_widget)
FRAMES_PER_SECOND = "120"


def prefer_quick_frames(environ: dict[str, str] | os._Environ = os.environ) -> None:
    """Let Textual draw up to 120 frames a second (its default is 60), unless the user set TEXTUAL_FPS.

    Textual draws a changed screen one frame period after it falls idle, and a key that
    shows another run takes two frames (the run list's highlight, then the run). At 60 fps
    that waiting was 20-25 ms of a 50 ms key press (bench/bench_tui.py: p50 49 -> 31 ms
    at 120 fps). Frames are drawn only when something changed, so an idle app costs the same.
    Must run before Textual is imported: it reads the variable once.
    """
    environ.setdefault("TEXTUAL_FPS", FRAMES_PER_SECOND)


def bundled_sample_data() -> Path | None:
    """The repository's sample_data/ (a source checkout or an editable install), if it is there."""
    candidate = Path(__file__).resolve().parent.parent / "sample_data"
    return candidate if (candidate / "trainset_label.txt").is_file() else None


def ask_the_terminal_about_images() -> threading.Thread:
    """Import textual-image on a thread while the app is imported: it asks the terminal about graphics and cell size.

    Only for the modes that need the answers: the thread's imports share the GIL with the
    app's and made the default (half-cell) first frame 0.15-0.25 s later.

    Its questions only work before the app runs, and each waits up to 0.1 s for an answer
    (terminals without sixel or kitty graphics never answer), which is time the app's own
    imports can use. Textual and rich are imported first, so the thread imports only
    textual-image, PIL and numpy, which the app's import never touches: the two imports
    cannot wait on each other's module locks.
    """
    import textual.app
    import textual.widget  # noqa: F401

    thread = threading.Thread(target=importlib.import_module, args=("textual_image.widget",), daemon=True,
                              name="image-probe")
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ffdv-tui", description="Train and judge deepfake image detectors.")
    parser.add_argument("--data", type=Path, help="dataset for new runs (default: the bundled sample_data/)")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="folder of run folders (default: ./runs)")
    parser.add_argument("--images", choices=IMAGE_MODES, default="halfcell",
                        help="image previews: halfcell (default: any truecolor terminal, SSH, tmux), sixel, "
                             "tgp (kitty graphics), auto (what the terminal supports), none")
    args = parser.parse_args(argv)
    prefer_quick_frames()
    data = args.data or bundled_sample_data()
    if data is not None and not data.is_dir():
        print(f"ffdv-tui: --data {data}: no such folder", file=sys.stderr)
        return 2
    probe = None
    if args.images in QUESTIONED_MODES:
        probe = ask_the_terminal_about_images()

    from ffdv_tui.app import FfdvApp

    app = FfdvApp(runs_dir=args.runs, data_dir=data, images=args.images, quiet_gc=True)
    if probe is not None:
        probe.join()  # the terminal's answers must be in before Textual takes the keyboard
    message = app.run()
    if app.return_code:  # the app ended on an unhandled exception: Textual has printed its traceback
        return app.return_code
    if message:
        print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
