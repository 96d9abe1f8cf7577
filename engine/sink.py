"""Where the engine's events go: the run folder's log, and any in-process listener (the console)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from engine.contract.protocol import Event
from engine.contract.runstore import EventWriter

Listener = Callable[[Event], None]


class EventSink:
    """Writes each event once (rank 0 only has a writer) and hands it to the listeners."""

    def __init__(self, writer: EventWriter | None = None, listeners: Iterable[Listener] = ()):
        self.writer = writer
        self.listeners = list(listeners)

    def emit(self, event: Event) -> Event:
        if self.writer is not None:
            self.writer.emit(event)
        else:
            event.time = time.time()
        for listener in self.listeners:
            listener(event)
        return event

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
