"""data.sample_weights: listed training images are drawn weight times per epoch, recorded in the sidecar; bad files
are refused naming the line and the fix."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST_TRAIN

from engine.cli import main
from engine.contract.errors import DataError
from engine.contract.protocol import RunStarted
from engine.contract.runstore import RunPaths, read_events
from engine.data.dataset import resolve_split
from engine.data.sample_weights import read_sample_weights
from engine.loader import EpochSampler


def test_weights_become_repeats(tiny_ffdi: Path, tmp_path: Path):
    split = resolve_split(tiny_ffdi, "train")
    listed = tmp_path / "hard.csv"
    listed.write_text(f"img_name,target,score,reason\n{split.names[3]},1,0.1,x\n{split.names[5]},1,0.2,x\n")
    repeats = read_sample_weights(listed, split)
    assert repeats[3] == repeats[5] == 2 and repeats.sum() == len(split) + 2  # no weight column: twice
    weighted = tmp_path / "w.csv"
    weighted.write_text(f"img_name,weight\n{split.names[0]},5\n")
    repeats = read_sample_weights(weighted, split)
    drawn = Counter(index for index, _ in EpochSampler(len(split), True, 0, repeats=repeats))
    assert drawn[0] == 5 and all(drawn[i] == 1 for i in range(1, len(split)))


@pytest.mark.parametrize("text,message", [
    ("name,weight\na.jpg,2\n", "line 1 has no img_name column"),
    ("img_name,weight\n{0},2\n{0},two\n", "line 3: weight 'two' is not a whole number"),
    ("img_name,weight\n{0},0\n", "line 2: weight"),
    ("img_name\nnot-there.jpg\n", "line 2: 'not-there.jpg'"),
])
def test_bad_weight_files_name_the_line(tiny_ffdi: Path, tmp_path: Path, text: str, message: str):
    split = resolve_split(tiny_ffdi, "train")
    path = tmp_path / "w.csv"
    path.write_text(text.format(split.names[0]))
    with pytest.raises(DataError, match=message):
        read_sample_weights(path, split)
    with pytest.raises(DataError, match="names no file"):
        read_sample_weights(tmp_path / "missing.csv", split)


@pytest.mark.slow
def test_a_run_draws_and_records_the_weights(tiny_ffdi: Path, tmp_path: Path):
    split = resolve_split(tiny_ffdi, "train")
    weights = tmp_path / "w.csv"
    weights.write_text("img_name,weight\n" + "".join(f"{name},5\n" for name in split.names[:8]))
    runs = tmp_path / "runs"
    assert main(["train", "--data", str(tiny_ffdi), "--runs", str(runs), *FAST_TRAIN, "--epochs", "1",
                 "--sample-weights", str(weights), "--name", "weighted"]) == 0
    paths = RunPaths(runs / "weighted")
    started = next(e for e in read_events(paths.events) if isinstance(e, RunStarted))
    assert started.steps_per_epoch == (len(split) + 8 * 4) // 16  # 96 + 32 draws in batches of 16 (drop_last)
    sidecar = json.loads((paths.checkpoints / "best.json").read_text())
    assert sidecar["sample_weights"] == {name: 5 for name in split.names[:8]}
    assert sidecar["config"]["data"]["sample_weights"] == str(weights)
    assert np.all(read_sample_weights(weights, split)[:8] == 5)
