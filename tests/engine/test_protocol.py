"""engine.contract.protocol: every event round-trips, and readers keep what they do not understand."""

from __future__ import annotations

import dataclasses
import json

import pytest

from engine.contract import protocol
from engine.contract.protocol import (
    COMPLETED,
    EVENT_TYPES,
    PROTOCOL_VERSION,
    CheckpointSaved,
    EpochEnded,
    Event,
    Heartbeat,
    Paused,
    PredictionsWritten,
    Resumed,
    RunError,
    RunFinished,
    RunStarted,
    RunWarning,
    Step,
    UnknownEvent,
    Validated,
    clean_number,
    decode_event,
    encode_event,
    event_to_dict,
)

# One fully populated example of every event type (non-default values everywhere, so a
# field that is dropped or defaulted on the way back shows up as a difference).
EXAMPLES: list[Event] = [
    RunStarted(
        seq=1,
        time=1700000000.25,
        run_id="r1",
        config={"data": {"root": "/d", "img_size": 128}, "optim": {"lr": 0.001}},
        model="resnet10t",
        device="cuda:0",
        epochs=8,
        steps_per_epoch=123,
        num_train=3936,
        num_val=1000,
        start_epoch=2,
        world_size=4,
        host="gpu-box",
        pid=4242,
        versions={"torch": "2.4.0", "timm": "1.0.9"},
    ),
    Step(seq=2, time=2.5, epoch=1, step=50, epoch_step=10, steps_per_epoch=40, loss=0.6931, lr=1e-3, images_per_sec=812.5),
    EpochEnded(seq=3, time=3.5, epoch=1, train_loss=0.5, duration_s=61.25, images_per_sec=700.0),
    Validated(
        seq=4,
        time=4.5,
        epoch=1,
        metrics={"auc": 0.91, "eer": 0.12, "tpr_at_fpr_1e-3": None, "confusion": [[5, 1], [2, 7]]},
        num_images=15,
        best_metric="auc",
        is_best=True,
        weights="ema",
    ),
    PredictionsWritten(seq=5, time=5.5, epoch=1, path="predictions/epoch-001.csv", count=15),
    CheckpointSaved(
        seq=6, time=6.5, epoch=1, step=50, path="checkpoints/epoch-001.safetensors", reason="command",
        is_best=True, metric_value=0.91,
    ),
    Paused(seq=7, time=7.5, epoch=2, step=60),
    Resumed(seq=8, time=8.5, epoch=2, step=60, reason="restart", checkpoint="checkpoints/last.safetensors"),
    RunWarning(seq=9, time=9.5, message="3 bad images skipped", code="bad_images", detail={"count": 3, "first": "x.jpg"}),
    RunError(seq=10, time=10.5, message="CUDA out of memory", traceback="Traceback (most recent call last): ...", rank=1),
    Heartbeat(seq=11, time=11.5, device="cuda:0", memory_used=1 << 30, memory_total=80 << 30, utilization=97.5),
    RunFinished(
        seq=12, time=12.5, status=COMPLETED, epochs_completed=8, best_metric="auc", best_value=0.93, best_epoch=6,
        duration_s=3600.5, bad_images=3, message="done",
    ),
]


def _fields(event: Event) -> dict:
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}


def test_examples_cover_every_event_type():
    assert {type(e) for e in EXAMPLES} == set(EVENT_TYPES.values())
    assert len(EVENT_TYPES) == 12


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.kind)
def test_event_round_trips_through_encode_and_decode(event):
    line = encode_event(event)
    assert line.endswith("\n")
    assert line.count("\n") == 1  # exactly one line, even with a multi-line traceback inside
    back = decode_event(line)
    assert type(back) is type(event)
    assert _fields(back) == _fields(event)
    assert back.extra == {}


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.kind)
def test_encoded_line_carries_version_kind_seq_and_time(event):
    data = json.loads(encode_event(event))
    assert data["v"] == PROTOCOL_VERSION
    assert data["kind"] == event.kind
    assert data["seq"] == event.seq
    assert data["time"] == event.time
    assert "extra" not in data
    assert "kind_name" not in data


def test_decode_accepts_bytes():
    event = Paused(seq=3, time=1.0, epoch=1, step=2)
    back = decode_event(encode_event(event).encode("utf-8"))
    assert back == event


def test_multiline_traceback_is_escaped_on_one_line():
    event = RunError(message="boom", traceback="line one\nline two\n")
    line = encode_event(event)
    assert line.count("\n") == 1
    assert decode_event(line).traceback == "line one\nline two\n"


def test_unknown_kind_becomes_unknown_event_with_fields_in_extra():
    line = json.dumps({"v": 1, "seq": 17, "time": 5.0, "kind": "lr_found", "lr": 0.003, "curve": [1, 2, 3]})
    event = decode_event(line)
    assert isinstance(event, UnknownEvent)
    assert event.kind_name == "lr_found"
    assert event.seq == 17
    assert event.time == 5.0
    assert event.extra == {"lr": 0.003, "curve": [1, 2, 3]}


def test_unknown_event_re_encodes_its_kind_and_fields():
    original = {"v": 1, "seq": 17, "time": 5.0, "kind": "lr_found", "lr": 0.003, "curve": [1, 2, 3]}
    event = decode_event(json.dumps(original))
    data = json.loads(encode_event(event))
    assert data == original
    again = decode_event(encode_event(event))
    assert isinstance(again, UnknownEvent)
    assert again.kind_name == "lr_found"
    assert again.extra == event.extra


def test_unknown_fields_on_a_known_kind_are_kept_and_round_trip():
    data = event_to_dict(Paused(seq=4, time=2.0, epoch=3, step=99))
    data["reason_v2"] = "thermal"
    data["nested"] = {"a": [1, 2]}
    event = decode_event(json.dumps(data))
    assert isinstance(event, Paused)
    assert (event.epoch, event.step, event.seq) == (3, 99, 4)
    assert event.extra == {"reason_v2": "thermal", "nested": {"a": [1, 2]}}
    assert json.loads(encode_event(event)) == data


def test_line_written_by_a_newer_protocol_version_still_decodes():
    data = event_to_dict(Step(seq=8, time=1.0, epoch=2, step=7, epoch_step=3, steps_per_epoch=4, loss=0.25, lr=0.1,
                              images_per_sec=10.0))
    data["v"] = PROTOCOL_VERSION + 5
    data["grad_norm"] = 1.5  # a field the newer engine added
    event = decode_event(json.dumps(data))
    assert isinstance(event, Step)
    assert event.loss == 0.25
    assert event.step == 7
    assert event.extra == {"grad_norm": 1.5}  # "v" itself is not an extra field


def test_line_missing_a_required_field_decodes_as_unknown_event():
    data = event_to_dict(Step(seq=5, time=1.0, epoch=2, step=7, epoch_step=3, steps_per_epoch=4, loss=0.25, lr=0.1,
                              images_per_sec=10.0))
    del data["loss"]
    event = decode_event(json.dumps(data))
    assert isinstance(event, UnknownEvent)
    assert event.kind_name == "step"
    assert event.seq == 5
    # the fields it did have are not lost
    assert event.extra["epoch"] == 2
    assert event.extra["lr"] == 0.1
    assert "loss" not in event.extra
    # and it re-encodes to what was read
    assert json.loads(encode_event(event)) == data


def test_event_with_only_optional_fields_decodes_typed():
    event = decode_event('{"kind":"heartbeat","seq":3}')
    assert isinstance(event, Heartbeat)
    assert event.seq == 3
    assert event.memory_used is None
    assert event.time == 0.0


def test_line_without_kind_decodes_as_unknown_event():
    event = decode_event('{"seq":2,"hello":1}')
    assert isinstance(event, UnknownEvent)
    assert event.kind_name == ""
    assert event.extra == {"hello": 1}


@pytest.mark.parametrize("line", ["[1, 2]", "3", '"text"', "null", "true"])
def test_non_object_json_raises_value_error(line):
    with pytest.raises(ValueError, match="JSON object"):
        decode_event(line)


@pytest.mark.parametrize("line", ["", "{", '{"v":1,"seq":9,', "not json", b"\xff\xfe{}"])
def test_unparseable_line_raises_value_error(line):
    with pytest.raises(ValueError):
        decode_event(line)


@pytest.mark.parametrize(
    "line",
    [
        '{"kind":"paused","seq":null,"epoch":1,"step":1}',
        '{"kind":"paused","seq":1,"time":null,"epoch":1,"step":1}',
        '{"kind":"paused","seq":{},"epoch":1,"step":1}',
        '{"kind":["paused"],"seq":1}',
    ],
    ids=["seq-null", "time-null", "seq-object", "kind-list"],
)
def test_base_field_of_wrong_type_is_a_value_error_not_a_crash(line):
    # decode_event promises ValueError for a bad line, and readers catch only ValueError:
    # any other exception here would take a viewer down on one odd line.
    try:
        event = decode_event(line)
    except ValueError:
        return
    assert isinstance(event, Event)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(float("nan"), None), (float("inf"), None), (float("-inf"), None), (None, None), (0.5, 0.5), (3, 3.0), (-0.0, 0.0)],
)
def test_clean_number(value, expected):
    assert clean_number(value) == expected
    if expected is not None:
        assert isinstance(clean_number(value), float)


def test_clean_number_accepts_numpy_like_scalars():
    import numpy as np

    assert clean_number(np.float32(0.25)) == 0.25
    assert clean_number(np.float64("nan")) is None


def test_nan_metric_cleaned_with_clean_number_is_written_as_null():
    metrics = {"auc": clean_number(float("nan")), "ap": clean_number(0.75), "eer": clean_number(float("inf"))}
    line = encode_event(Validated(epoch=1, metrics=metrics, num_images=2, best_metric="auc", is_best=False))
    assert "NaN" not in line
    assert "Infinity" not in line
    data = json.loads(line)
    assert data["metrics"] == {"auc": None, "ap": 0.75, "eer": None}
    assert decode_event(line).metrics == {"auc": None, "ap": 0.75, "eer": None}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_encode_event_never_emits_nan_or_infinity(bad):
    with pytest.raises(ValueError):
        encode_event(Validated(epoch=1, metrics={"auc": bad}, num_images=2, best_metric="auc", is_best=False))
    with pytest.raises(ValueError):
        encode_event(Step(epoch=1, step=1, epoch_step=1, steps_per_epoch=1, loss=bad, lr=0.1, images_per_sec=1.0))


def test_encode_uses_str_for_values_json_cannot_hold():
    from pathlib import Path

    line = encode_event(PredictionsWritten(epoch=1, path=Path("predictions/a.csv"), count=3))
    assert json.loads(line)["path"] == "predictions/a.csv"


def test_run_finished_defaults_round_trip():
    event = RunFinished(status=protocol.FAILED, epochs_completed=0)
    back = decode_event(encode_event(event))
    assert back == event
    assert back.best_value is None and back.best_epoch is None


def test_checkpoint_saved_metric_value_none_round_trips():
    event = CheckpointSaved(epoch=1, step=2, path="p", reason="epoch")
    back = decode_event(encode_event(event))
    assert back.metric_value is None
    assert back == event


def test_commands_table_lists_the_documented_commands():
    assert set(protocol.COMMANDS) == {"pause", "resume", "stop", "checkpoint_now"}

