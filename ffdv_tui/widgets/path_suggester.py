"""Completion of folder paths as you type, for the inputs that take datasets (→ or end accepts)."""

from __future__ import annotations

import asyncio
import os

from textual.suggester import Suggester

SCAN_LIMIT = 5000  # entries looked at in one folder: an image folder can hold half a million files


def complete_folder(text: str) -> str | None:
    """``text`` completed to the first sub-folder (by name) that starts with its last part, or None."""
    folder_part, _, prefix = text.rpartition("/")
    folder = os.path.expanduser(folder_part + "/" if folder_part or text.startswith("/") else ".")
    matches = []
    try:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= SCAN_LIMIT:
                    break
                hidden = entry.name.startswith(".") and not prefix.startswith(".")
                if entry.name.startswith(prefix) and not hidden and entry.is_dir():
                    matches.append(entry.name)
    except OSError:
        return None
    if not matches or prefix in matches:  # nothing to add to a name already complete
        return None
    return text[: len(text) - len(prefix)] + min(matches) + "/"


class PathSuggester(Suggester):
    """Suggests the rest of the last space-separated path in an input: a folder that exists.

    The folder is listed on a thread, so a slow or huge folder never holds up typing.
    """

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        head, space, last = value.rpartition(" ")
        if not last:
            return None
        completed = await asyncio.to_thread(complete_folder, last)
        return None if completed is None or completed == last else head + space + completed
