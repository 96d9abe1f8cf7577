"""The checkpoint sidecar: typed, versioned encode/decode; a damaged one is a clear problem, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.contract.sidecar import SIDECAR_FORMAT, Sidecar, SidecarError, decode_sidecar, encode_sidecar, read_sidecar


def full() -> Sidecar:
    return Sidecar(model="resnet10t", img_size=64, mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2), eval_crop=0.875,
                   weights="ema", metrics={"auc": 0.9, "loss": None, "confusion": [[1, 2], [3, 4]]}, run="r",
                   config={"data": {"root": "/d"}}, versions={"torch": "2"}, epoch=3, step=30, reason="epoch",
                   metric_value=0.9, is_best=True, created=1.5)


def test_round_trip_keeps_every_field_and_unknown_ones() -> None:
    sidecar = full()
    data = json.loads(json.dumps(encode_sidecar(sidecar)))
    assert data["format"] == SIDECAR_FORMAT and data["mean"] == [0.5, 0.4, 0.3]
    assert decode_sidecar(data) == sidecar
    newer = {**data, "format": SIDECAR_FORMAT + 1, "operating_notes": {"t": 1.2}}
    again = decode_sidecar(newer)
    assert again.extra == {"operating_notes": {"t": 1.2}} and encode_sidecar(again)["operating_notes"] == {"t": 1.2}
    assert again.data_root() == "/d"


@pytest.mark.parametrize("field,value,words", [
    ("metrics", "x", "metrics is 'x'"),
    ("epoch", "x", "epoch is 'x'"),
    ("step", -1, "step is -1"),
    ("img_size", 5000, "from 16 to 4096"),
    ("img_size", "64", "img_size is '64'"),
    ("eval_crop", 2.0, "from 0.1 to 1.0"),
    ("crop", "squash", "one of resize, native"),
    ("eval_grid", 0, "from 1 to 8"),
    ("eval_grid", 2.5, "from 1 to 8"),
    ("eval_reduce", "median", "one of mean, max"),
    ("stem", "dct", "one of rgb, srm, rgb+srm"),
    ("mean", "abc", "three numbers"),
    ("std", [0.2, 0.0, 0.2], "three positive numbers"),
    ("is_best", "yes", "true or false"),
    ("model", 7, "must name a timm model"),
    ("config", [], "an object"),
])
def test_a_field_of_the_wrong_kind_is_a_clear_problem(field: str, value, words: str) -> None:
    data = {**encode_sidecar(full()), field: value}
    with pytest.raises(SidecarError, match="wrong kind") as caught:
        decode_sidecar(data, "x/epoch-003.json")
    assert words in str(caught.value) and "x/epoch-003.json" in str(caught.value) and "Fix:" in str(caught.value)
    assert len(caught.value.problems) == 1


def test_every_bad_field_is_listed_at_once() -> None:
    with pytest.raises(SidecarError) as caught:
        decode_sidecar({"model": "m", "metrics": "x", "epoch": "x", "img_size": 5000})
    assert len(caught.value.problems) == 3


def test_missing_unreadable_and_not_an_object(tmp_path: Path) -> None:
    weights = tmp_path / "a.safetensors"
    with pytest.raises(SidecarError, match="--model NAME"):
        read_sidecar(weights)
    weights.with_suffix(".json").write_text("{")
    with pytest.raises(SidecarError, match="unreadable"):
        read_sidecar(weights)
    weights.with_suffix(".json").write_text("[1]")
    with pytest.raises(SidecarError, match="JSON object"):
        read_sidecar(weights)
    weights.with_suffix(".json").write_text(json.dumps({"model": "m"}))
    assert read_sidecar(weights) == Sidecar(model="m")
