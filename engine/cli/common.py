"""What every ``ffdv`` command shares: finding a run by name, JSON lines for programs, the error size."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from engine.contract.errors import FfdvError
from engine.contract.jobs import JobMessage, encode_job_message
from engine.contract.runstore import is_run_folder

ERROR_LIMIT = 20_000  # an error lists up to 20 problems with their lines; more is a bug, not a message


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags that set a config setting (their dest is its dotted name), as given."""
    return {k: v for k, v in vars(args).items() if "." in k and v is not None}


def find_run(value: str, runs: str) -> Path:
    for candidate in (Path(value), Path(runs) / value):
        if is_run_folder(candidate):
            return candidate
    raise FfdvError(f"{value}: no run folder with a config.toml here or in {runs}/")


def json_line(message: JobMessage) -> None:
    print(encode_job_message(message), flush=True)


def print_json(data: dict) -> None:
    print(json.dumps(data), flush=True)
