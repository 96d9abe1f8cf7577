"""``ffdv-tui``: the app's entry point."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("ffdv-tui: the app is not built yet; train headless with `ffdv train --data sample_data`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
