"""``ffdv-tui [--data DIR] [--runs DIR] [--images MODE]``: the workbench."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

IMAGE_MODES = ("auto", "halfcell", "sixel", "tgp", "none")


def bundled_sample_data() -> Path | None:
    """The repository's sample_data/ (a source checkout or an editable install), if it is there."""
    candidate = Path(__file__).resolve().parent.parent / "sample_data"
    return candidate if (candidate / "trainset_label.txt").is_file() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ffdv-tui", description="Train and judge deepfake image detectors.")
    parser.add_argument("--data", type=Path, help="dataset for new runs (default: the bundled sample_data/)")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="folder of run folders (default: ./runs)")
    parser.add_argument("--images", choices=IMAGE_MODES, default="halfcell",
                        help="image previews: halfcell (default: any truecolor terminal, SSH, tmux), sixel, "
                             "tgp (kitty graphics), auto (what the terminal supports), none")
    args = parser.parse_args(argv)
    data = args.data or bundled_sample_data()
    if data is not None and not data.is_dir():
        print(f"ffdv-tui: --data {data}: no such folder", file=sys.stderr)
        return 2
    if args.images != "none":
        import textual_image.widget  # noqa: F401 - asks the terminal its cell size, which only works before the app runs

    from ffdv_tui.app import FfdvApp

    message = FfdvApp(runs_dir=args.runs, data_dir=data, images=args.images, quiet_gc=True).run()
    if message:
        print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
