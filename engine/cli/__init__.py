"""``ffdv``: the engine without the app (train, evaluate, predict, explain, scan, models).

One module per command group; each adds its sub-parsers and names their handlers
(``add_commands``). Every input problem a user can fix ends the command with a
message naming the file, the line and the fix, and exit status 2; a failed run exits 1.
"""

from __future__ import annotations

import argparse
import sys

from engine import __version__
from engine.cli import calibrate, compare, data, explain, hard, judge, models, queue, runs, train
from engine.cli.common import ERROR_LIMIT, json_line
from engine.cli.help import polish
from engine.contract.errors import FfdvError
from engine.contract.jobs import JobFailed
from engine.contract.text import printable

COMMAND_GROUPS = (train, runs, queue, compare, judge, calibrate, explain, hard, data, models)


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    """The parser and the handler of each command."""
    parser = argparse.ArgumentParser(prog="ffdv", description="Train and judge deepfake image detectors, headless.",
                                     epilog="`ffdv COMMAND --help` shows a command's options and examples.")
    parser.add_argument("--version", action="version", version=f"ffdv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    handlers: dict = {}
    for group in COMMAND_GROUPS:
        handlers.update(group.add_commands(sub))
    polish(parser)
    return parser, handlers


def main(argv: list[str] | None = None) -> int:
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    try:
        return handlers[args.command](args)
    except (FfdvError, OSError) as exc:
        if isinstance(exc, OSError):
            from engine.contract.errors import storage_error

            exc = storage_error(exc) or exc
            if isinstance(exc, OSError):
                raise
        if getattr(args, "progress", "") == "json":
            json_line(JobFailed(message=str(exc)))
        print(f"error: {printable(exc, ERROR_LIMIT, multiline=True)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
