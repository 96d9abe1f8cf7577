"""What the engine is asked to do between steps: commands from commands.jsonl, and signals.

SIGTERM and SIGINT ask for the same clean stop as the ``stop`` command: finish the
step, save a checkpoint, write run_finished. A second signal while stopping is
left to Python's default (it ends the process at once).
"""

from __future__ import annotations

import signal
import threading

from engine.contract.protocol import COMMANDS, RunError
from engine.contract.runstore import Command, CommandReader, RunPaths
from engine.sink import EventSink


class Control:
    def __init__(self, paths: RunPaths | None, sink: EventSink):
        self.sink = sink
        self.reader = CommandReader(paths.commands, skip_existing=True) if paths is not None else None
        self.stop_reason = ""
        self._previous_handlers: dict[int, object] = {}

    def install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    def _on_signal(self, signum: int, _frame) -> None:
        self.stop_reason = f"signal {signal.Signals(signum).name}"
        signal.signal(signum, signal.SIG_DFL)  # a second one ends the process at once

    @property
    def stop_requested(self) -> bool:
        return bool(self.stop_reason)

    def poll(self) -> list[Command]:
        """New valid commands; bad ones are answered with an error event and dropped."""
        if self.reader is None:
            return []
        commands, problems = self.reader.poll()
        for problem in problems:
            self.sink.emit(RunError(message=problem))
        valid = []
        for command in commands:
            expected = COMMANDS.get(command.name)
            if expected is None:
                self.sink.emit(RunError(message=f"unknown command {command.name!r} ignored; known: {', '.join(COMMANDS)}",
                                        extra={"command": command.id}))
            elif set(command.args) - set(expected):
                bad = ", ".join(sorted(set(command.args) - set(expected)))
                self.sink.emit(RunError(message=f"command {command.name!r} takes no argument {bad}; ignored",
                                        extra={"command": command.id}))
            else:
                valid.append(command)
                if command.name == "stop":
                    self.stop_reason = "stop command"
        return valid
