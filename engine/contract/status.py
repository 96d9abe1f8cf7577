"""The words for where a run stands: how its engine ended it, and what a viewer shows.

String enums, so the values are the same strings as in ``events.jsonl`` and JSON
files written before they existed, and compare equal to them.
"""

from __future__ import annotations

from enum import StrEnum


class RunOutcome(StrEnum):
    """How the engine ended a run: ``RunFinished.status``."""

    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"


class RunStatus(StrEnum):
    """A run as a viewer shows it: the log's word, corrected by whether its engine still lives."""

    QUEUED = "queued"  # a run folder waiting for the queue runner (engine/contract/queue.py): no engine yet
    CANCELLED = "cancelled"  # taken off the queue before it started
    STARTING = "starting"  # launched, no run_started yet
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"  # completed every epoch
    STOPPED = "stopped"  # stopped on request, resumable
    FAILED = "failed"  # the engine reported an error and ended the run
    CRASHED = "crashed"  # the engine is gone without finishing
    UNRESPONSIVE = "unresponsive"  # on another host, silent for too long

    @property
    def is_live(self) -> bool:
        return self in LIVE_STATUSES

    @classmethod
    def of_outcome(cls, outcome: object) -> RunStatus:
        """The status of a run whose engine finished with ``outcome`` (anything unknown counts as failed)."""
        return _OF_OUTCOME.get(outcome, cls.FAILED) if isinstance(outcome, str) else cls.FAILED


LIVE_STATUSES = frozenset({RunStatus.STARTING, RunStatus.RUNNING, RunStatus.PAUSED})
_OF_OUTCOME = {RunOutcome.COMPLETED: RunStatus.FINISHED, RunOutcome.STOPPED: RunStatus.STOPPED,
               RunOutcome.FAILED: RunStatus.FAILED}
