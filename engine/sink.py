"""Where the engine's events go: the run folder's log, and any in-process listener (the console)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from engine.contract.protocol import Event
from engine.contract.runstore import EventWriter
from engine.contract.text import printable

Listener = Callable[[Event], None]
log = logging.getLogger(__name__)


class EventSink:
    """Writes each event once (rank 0 only has a writer) and hands it to the listeners.

    A listener is a viewer: its failure (a display bug, a closed terminal) is logged once
    and never reaches the training loop, and the event is written before any listener runs.
    """

    def __init__(self, writer: EventWriter | None = None, listeners: Iterable[Listener] = ()):
        self.writer = writer
        self.listeners = list(listeners)
        self._failed: set[int] = set()  # listeners whose failure was already said

    def emit(self, event: Event) -> Event:
        if self.writer is not None:
            self.writer.emit(event)
        else:
            event.time = time.time()
        for listener in self.listeners:
            try:
                listener(event)
            except Exception as exc:
                if id(listener) not in self._failed:
                    self._failed.add(id(listener))
                    log.warning("event listener %s failed on a %s event (training goes on; said once): %s",
                                printable(getattr(listener, "__qualname__", type(listener).__name__)), event.kind,
                                printable(f"{type(exc).__name__}: {exc}"))
        return event

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
