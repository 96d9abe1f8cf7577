"""What the engine is asked to do between steps: commands from commands.jsonl, and signals.

SIGTERM and SIGINT ask for the same clean stop as the ``stop`` command: finish the
step, save a checkpoint, write run_finished. A second signal while stopping is
left to Python's default (it ends the process at once).
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Protocol

from engine.contract.protocol import COMMANDS, Paused, Resumed, RunError, RunWarning
from engine.contract.runstore import Command, CommandReader, RunPaths
from engine.distributed import DistContext, agree
from engine.sink import EventSink

PAUSE_POLL_S = 0.2


class StepLoop(Protocol):
    """What the training loop lends ``Control.between_steps``: where it is, heartbeats, checkpoints."""

    epoch: int
    global_step: int

    def heartbeat_if_due(self) -> None: ...

    def recovery_due(self) -> bool: ...

    def checkpoint(self, reason: str, validation=None, command_id: str = "") -> None: ...


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

    def between_steps(self, loop: StepLoop, dist: DistContext) -> bool:
        """Commands, signals, heartbeats and recovery checkpoints; blocks here while paused. True: stop now.

        Every rank decides the same: stop on any rank's word (each gets the signal); pause and checkpoints on
        rank 0's (it reads the commands and keeps the time); the others learn them from ``agree``.
        """
        loop.heartbeat_if_due()
        paused = False
        while True:
            want_pause, checkpoint_ids, answer = paused, [], {}
            for command in self.poll():
                if command.name == "checkpoint_now":
                    checkpoint_ids.append(command.id)
                elif command.name in ("pause", "resume") and want_pause == (command.name == "pause"):
                    state = "paused" if want_pause else "running"
                    self.sink.emit(RunWarning(message=f"{command.name} ignored: the run is already {state}",
                                              code="command_ignored", extra={"command": command.id}))
                elif command.name in ("pause", "resume"):
                    want_pause, answer = command.name == "pause", {"command": command.id}
            main = dist.is_main
            recovery_due = main and not paused and loop.recovery_due()
            stop, pause, checkpoint, recovery = agree(dist, [
                int(self.stop_requested), int(want_pause and main), int(bool(checkpoint_ids) and main),
                int(recovery_due)])
            if checkpoint:
                loop.checkpoint("command", command_id=",".join(checkpoint_ids))
            elif recovery and not stop:
                loop.checkpoint("recovery")
            if bool(pause) != paused:
                paused = bool(pause)
                event = Paused if paused else Resumed
                self.sink.emit(event(epoch=loop.epoch, step=loop.global_step, extra=answer))
            if stop:
                return True
            if not paused:
                return False
            time.sleep(PAUSE_POLL_S)
            loop.heartbeat_if_due()
