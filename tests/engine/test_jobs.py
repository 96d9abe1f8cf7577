"""engine.contract.jobs: the lines of `ffdv evaluate|predict --progress json`, written and read through one schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main
from engine.contract.jobs import (
    JOB_PROTOCOL_VERSION,
    EvaluationResult,
    JobFailed,
    JobProgress,
    MatrixResult,
    SubmissionResult,
    decode_job_message,
    encode_job_message,
)

EXAMPLES = [
    JobProgress(done=64, total=1000),
    EvaluationResult(metrics_file="/r/evaluations/e.json", predictions="/r/evaluations/e.csv", images="/d/valset",
                     metrics={"auc": 0.91, "eer": None, "confusion": [[5, 1], [2, 7]]}, unreadable=2),
    SubmissionResult(submission="/r/submissions/s.csv", rows=1000, unreadable=1),
    JobFailed(message="/d/valset_label.txt, line 3: target 7 is not 0 or 1"),
    JobProgress(done=64, total=1000, stage="valset · jpeg:50", eta_s=12.5),
    MatrixResult(matrix_dir="/r/evaluations/m", matrix="/r/evaluations/m/matrix.csv",
                 scores="/r/evaluations/m/scores.parquet", rows=["a", "ensemble-mean"], computed_cells=3),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.kind)
def test_every_message_round_trips(message) -> None:
    line = encode_job_message(message)
    assert "\n" not in line
    data = json.loads(line)
    assert data["v"] == JOB_PROTOCOL_VERSION and data["kind"] == message.kind
    assert decode_job_message(line) == message


def test_a_newer_engines_fields_are_kept_and_bad_types_left_out() -> None:
    line = json.dumps({"v": 9, "kind": "submission", "submission": "s.csv", "rows": "many", "unreadable": 0,
                       "checksum": "abc"})
    assert decode_job_message(line) is None  # rows is required and unusable: not a result to trust
    line = json.dumps({"v": 9, "kind": "submission", "submission": "s.csv", "rows": 3, "unreadable": None,
                       "checksum": "abc"})
    message = decode_job_message(line)
    assert isinstance(message, SubmissionResult) and message.rows == 3 and message.unreadable == 0
    assert message.extra == {"checksum": "abc", "unreadable": None}
    assert message.problems and "unreadable" in message.problems[0]


@pytest.mark.parametrize("line", ["", "not json", "[1, 2]", '{"kind": "weather"}', '{"done": 3, "total": 4}',
                                  '{"kind": "progress", "done": true, "total": 4}'])
def test_lines_that_are_not_job_messages_are_none(line: str) -> None:
    assert decode_job_message(line) is None


def test_cli_input_problem_is_a_job_failed_line(tmp_path: Path, capsys) -> None:
    assert main(["predict", "--checkpoint", str(tmp_path / "nothing.safetensors"), "--data", str(tmp_path),
                 "--progress", "json"]) == 2
    lines = [decode_job_message(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1 and isinstance(lines[0], JobFailed) and lines[0].message
