"""engine.contract.status: the run statuses are an enum whose values are the strings already in run folders."""

from __future__ import annotations

import json

from engine.contract.protocol import COMPLETED, RunFinished, decode_event, encode_event
from engine.contract.status import LIVE_STATUSES, RunOutcome, RunStatus


def test_values_are_the_strings_of_existing_logs() -> None:
    assert [s.value for s in RunStatus] == ["queued", "cancelled", "starting", "running", "paused", "finished",
                                            "stopped", "failed", "crashed", "unresponsive"]
    assert RunStatus.RUNNING == "running" and f"{RunStatus.CRASHED}" == "crashed"
    assert json.dumps({"status": RunStatus.PAUSED}) == '{"status": "paused"}'
    assert {s for s in RunStatus if s.is_live} == LIVE_STATUSES == {"starting", "running", "paused"}


def test_outcomes_map_to_statuses_and_round_trip_through_events() -> None:
    assert RunStatus.of_outcome("completed") is RunStatus.FINISHED
    assert RunStatus.of_outcome(RunOutcome.STOPPED) is RunStatus.STOPPED
    assert RunStatus.of_outcome("exploded") is RunStatus.FAILED and RunStatus.of_outcome(None) is RunStatus.FAILED
    assert RunStatus.of_outcome(["not", "hashable"]) is RunStatus.FAILED
    event = decode_event(encode_event(RunFinished(status=COMPLETED, epochs_completed=2)))
    assert event.status == RunOutcome.COMPLETED == "completed"
