"""ffdv-tui under cProfile (for bench/profile_tui.py): the profile is written to $FFDV_PROFILE when the app ends.

With $FFDV_PROFILE_WAIT set, profiling starts at SIGUSR1 (after start-up), so only key presses are measured.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys

profiler = cProfile.Profile()


def main() -> int:
    if os.environ.get("FFDV_PROFILE_WAIT"):
        signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
    else:
        profiler.enable()
    from ffdv_tui.__main__ import main as app_main

    try:
        return app_main(sys.argv[1:])
    finally:
        profiler.disable()
        profiler.dump_stats(os.environ["FFDV_PROFILE"])


if __name__ == "__main__":
    sys.exit(main())
