"""Benchmark layouts (ForenSynths, GenImage, CSV, DeepfakeBench) read from generated trees, each image with its source."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from engine.contract.errors import DataError
from engine.data.dataset import find_dataset, resolve_split, training_splits


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 120, 30)).save(buf, "JPEG")
    return buf.getvalue()


JPEG = _jpeg()


def put(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(JPEG)


def forensynths(root: Path, generators=("progan", "stylegan"), categories=("car", "cat")) -> Path:
    for gen in generators:
        for cat in categories:
            put(root / gen / cat, "0_real/a.jpg", "0_real/b.jpg", "1_fake/c.jpg")
    return root


def test_bare_forensynths_tree(tmp_path):
    root = forensynths(tmp_path / "CNN_synth_testset")
    dataset = find_dataset(root)
    assert dataset.layout == "forensynths" and list(dataset.splits) == ["test"]
    split = dataset.splits["test"]
    assert len(split) == 12 and int(split.targets.sum()) == 4
    assert Counter(split.sources) == {"progan": 6, "stylegan": 6}
    assert Counter(split.extra["category"]) == {"car": 6, "cat": 6}
    assert split.names[0] == "progan/car/0_real/a.jpg" and split.targets[0] == 0
    assert all((split.folder / n).is_file() for n in split.names)
    # evaluate/predict take the tree itself as the split
    assert resolve_split(root).names == split.names


def test_forensynths_with_split_folders_trains(tmp_path):
    """CNNDetection's dataset/{train,val}/<category>/{0_real,1_fake}: the category is the source."""
    for split in ("train", "val"):
        for cat in ("airplane", "bird"):
            put(tmp_path / split / cat, "0_real/r.png", "1_fake/f.png")
    train, _val = training_splits(tmp_path)
    assert train.layout == "forensynths" and len(train) == 4
    assert train.sources == ["airplane", "airplane", "bird", "bird"]
    assert train.targets.tolist() == [0, 1, 0, 1]
    assert find_dataset(tmp_path).layout == "forensynths"


def test_genimage(tmp_path):
    for gen, subset in (("Midjourney", "imagenet_midjourney"), ("stable_diffusion_v_1_4", "imagenet_ai_0419_sdv4")):
        put(tmp_path / gen / subset / "train", "ai/1.png", "ai/2.png", "nature/3.JPEG")
        put(tmp_path / gen / subset / "val", "ai/4.png", "nature/5.JPEG")
    dataset = find_dataset(tmp_path)
    assert dataset.layout == "genimage" and set(dataset.splits) == {"train", "val"}
    train = dataset.splits["train"]
    assert len(train) == 6 and int(train.targets.sum()) == 4
    assert Counter(train.sources) == {"Midjourney": 3, "stable_diffusion_v_1_4": 3}
    assert all((train.folder / n).is_file() for n in train.names)
    fake_of = dict(zip(train.names, train.targets.tolist()))
    assert fake_of["Midjourney/imagenet_midjourney/train/ai/1.png"] == 1
    assert fake_of["Midjourney/imagenet_midjourney/train/nature/3.JPEG"] == 0
    assert training_splits(tmp_path)[1].sources == ["Midjourney"] * 2 + ["stable_diffusion_v_1_4"] * 2


def test_csv_layout_keeps_extra_columns_as_text(tmp_path):
    put(tmp_path, "synthbuster/dalle2/a.png", "synthbuster/real/b.png", "laion/c.png", "laion/d.png")
    (tmp_path / "train.csv").write_text(
        "filename,label,typ,quality\n"
        "synthbuster/dalle2/a.png,1,dalle2,95\nsynthbuster/real/b.png,0,real,high\n"
        "laion/c.png,0,real,3.5\nlaion/d.png,1,sdxl,\n")
    (tmp_path / "val.csv").write_text("filename,label\nlaion/c.png,0\nsynthbuster/dalle2/a.png,1\n")
    dataset = find_dataset(tmp_path)
    assert dataset.layout == "csv" and set(dataset.splits) == {"train", "val"}
    train = dataset.splits["train"]
    assert train.targets.tolist() == [1, 0, 0, 1]
    assert train.extra["quality"] == ["95", "high", "3.5", ""]  # mixed types stay text
    assert train.sources == ["dalle2", "real", "real", "sdxl"]  # the typ column names the source
    val = dataset.splits["val"]
    assert val.sources == ["laion", "synthbuster"]  # no source column: the first folder of each name
    single = resolve_split(tmp_path / "val.csv")
    assert single.names == val.names and single.targets.tolist() == [0, 1]


def test_csv_with_missing_images_names_the_lines(tmp_path):
    put(tmp_path, "a.png")
    (tmp_path / "test.csv").write_text("filename,label\na.png,1\nb.png,0\n")
    with pytest.raises(DataError, match=r"line 3: 'b.png' is not in"):
        find_dataset(tmp_path)


def deepfakebench(root: Path) -> Path:
    frames = {}
    for video, label in (("000", "FF-real"), ("001", "FF-DF"), ("002", "FF-F2F")):
        names = [f"frames/{video}/{i:03d}.png" for i in range(2)]
        put(root, *names)
        frames.setdefault(label, {})[video] = {"label": label, "frames": names}
    data = {"FaceForensics++": {label: {"train": {"c23": videos}, "test": {"c23": videos}}
                                for label, videos in frames.items()}}
    (root / "FaceForensics++.json").write_text(json.dumps(data))
    return root


def test_deepfakebench_json(tmp_path):
    root = deepfakebench(tmp_path)
    dataset = find_dataset(root)
    assert dataset.layout == "deepfakebench" and set(dataset.splits) == {"train", "test"}
    test = dataset.splits["test"]
    assert len(test) == 6 and test.targets.tolist() == [0, 0, 1, 1, 1, 1]
    assert set(test.sources) == {"FaceForensics++"}
    assert test.extra["method"][2] == "FF-DF"
    assert all((test.folder / n).is_file() for n in test.names)
    assert resolve_split(root / "FaceForensics++.json").names == test.names


def test_deepfakebench_missing_frames_are_listed(tmp_path):
    root = deepfakebench(tmp_path)
    (root / "frames" / "001" / "001.png").unlink()
    with pytest.raises(DataError, match="001.png' does not exist"):
        find_dataset(root)


def test_unknown_layout_lists_the_layouts_and_what_it_saw(tmp_path):
    put(tmp_path / "images", "a.jpg")
    (tmp_path / "readme.md").write_text("hi")
    with pytest.raises(DataError) as info:
        find_dataset(tmp_path)
    message = str(info.value)
    assert "found: images, readme.md" in message
    for layout in ("FFDI", "ForenSynths", "GenImage", "CSV", "DeepfakeBench"):
        assert layout in message


def test_mixed_layout_names_the_folders(tmp_path):
    put(tmp_path / "trainset", "a.jpg")
    (tmp_path / "trainset_label.txt").write_text("img_name,target\na.jpg,1\n")
    put(tmp_path / "train" / "real", "b.jpg")
    with pytest.raises(DataError, match=r"a mix of layouts \(ffdi: trainset, trainset_label.txt; folders: train\)"):
        find_dataset(tmp_path)
