"""A screen's settings kept per run while the app runs (the predictions' filter, sort, threshold, search).

Closing a screen to look at something else must not cost the threshold a person set: the
app holds one dict per (screen, run), and the screen reads it back when it opens again.
"""

from __future__ import annotations

from textual.app import App


def kept(app: App, key: tuple[str, str]) -> dict:
    """What the screen ``key`` left last time (empty the first time, or in an app that keeps nothing)."""
    return getattr(app, "kept_settings", {}).get(key, {})


def keep(app: App, key: tuple[str, str], **settings) -> None:
    store = getattr(app, "kept_settings", None)
    if store is not None:
        store[key] = settings
