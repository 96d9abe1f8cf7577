"""``python -m engine ...``: the same commands as ``ffdv`` (the app starts runs as ``python -m engine run DIR``)."""

import sys

from engine.cli import main

sys.exit(main())
