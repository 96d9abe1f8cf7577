"""The leakage audit and the leakage-free split, on planted near-copies of real photographs.

The photographs are scikit-image's bundled ones (no download): unrelated pictures whose hashes are
20 or more bits apart, so a planted copy (rescaled, re-compressed, centre-cropped) must be found and
nothing else may be.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engine.contract.errors import DataError
from engine.data.dataset import find_dataset
from engine.data.hashes import hash_split
from engine.data.leakage import auc_score, audit, leakage_warning, write_report
from engine.data.neighbours import near_pairs
from engine.data.resplit import make_split

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "hubble_deep_field", "immunohistochemistry",
          "moon", "brick", "grass", "gravel", "page", "text", "horse", "clock", "retina", "cell"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("FFDV_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    from skimage import data

    out = []
    for name in PHOTOS:
        pixels = getattr(data, name)()
        if pixels.dtype != np.uint8:
            pixels = (pixels * (255.0 / max(float(pixels.max()), 1e-9))).astype(np.uint8)
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[..., None], 3, axis=2)
        img = Image.fromarray(pixels[..., :3])
        scale = 256 / max(img.size)
        out.append(img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale)))))
    return out


def centre_crop(img: Image.Image, side: float) -> Image.Image:
    w, h = round(img.width * side), round(img.height * side)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return img.crop((left, top, left + w, top + h))


PLANTED = {  # val image -> (the training photograph it copies, how)
    "rescaled.jpg": (0, lambda im: im.resize((im.width // 2, im.height // 2))),
    "resaved.png": (1, lambda im: im),  # saved again as PNG below (no JPEG quality at all)
    "jpeg40.jpg": (2, lambda im: im),
    "crop80.jpg": (3, lambda im: centre_crop(im, 0.8)),
    "crop64_small.jpg": (4, lambda im: centre_crop(im, 0.64).resize((90, 90))),
}


def write_dataset(root: Path, photos: list[Image.Image], unrelated: range = range(10, 16)) -> Path:
    """Training: photographs 0-9; validation: the planted copies and photographs that appear nowhere else."""
    (root / "trainset").mkdir(parents=True)
    (root / "valset").mkdir()
    train_lines = ["img_name,target"]
    for i in range(10):
        photos[i].save(root / "trainset" / f"photo{i}.jpg", quality=92)
        train_lines.append(f"photo{i}.jpg,{i % 2}")
    val_lines = ["img_name,target"]
    for k, (name, (source, how)) in enumerate(PLANTED.items()):
        how(photos[source]).save(root / "valset" / name, quality=40 if name == "jpeg40.jpg" else 90)
        val_lines.append(f"{name},{k % 2}")
    for i in unrelated:
        photos[i].save(root / "valset" / f"other{i}.jpg", quality=88)
        val_lines.append(f"other{i}.jpg,{i % 2}")
    (root / "trainset_label.txt").write_text("\n".join(train_lines) + "\n")
    (root / "valset_label.txt").write_text("\n".join(val_lines) + "\n")
    return root


def test_hashes_find_planted_near_copies_and_ignore_unrelated_photographs(tmp_path: Path, photos) -> None:
    root = write_dataset(tmp_path / "data", photos)
    report = audit(root, workers=1)
    assert report.done and not report.unhashable
    found = {(p.name, p.other_name) for p in report.pairs if p.split == "val"}
    expected = {(name, f"photo{source}.jpg") for name, (source, _) in PLANTED.items()}
    assert found == expected  # every planted copy, and no unrelated photograph
    assert report.flagged["val-train"] == len(PLANTED)
    assert report.share["val-train"] == pytest.approx(len(PLANTED) / (len(PLANTED) + 6))


def test_unhashable_images_are_listed_with_the_reason_and_the_audit_goes_on(tmp_path: Path, photos) -> None:
    root = write_dataset(tmp_path / "data", photos)
    (root / "valset" / "other10.jpg").write_bytes(b"")  # empty
    (root / "valset" / "other11.jpg").write_bytes(b"this is not a JPEG at all")
    lines = (root / "valset_label.txt").read_text() + "gone.jpg,0\n"  # listed, not there
    (root / "valset_label.txt").write_text(lines)
    report = audit(root, workers=1)
    assert report.done
    reasons = {u.name: u.reason for u in report.unhashable}
    assert set(reasons) == {"other10.jpg", "other11.jpg", "gone.jpg"}
    assert "empty" in reasons["other10.jpg"] and "not found" in reasons["gone.jpg"]
    assert report.flagged["val-train"] == len(PLANTED)  # the rest of the audit is whole
    assert report.hashed["val"] == len(PLANTED) + 4
    written = write_report(report, tmp_path / "out")
    unhashable = pd.read_csv(tmp_path / "out" / "unhashable.csv")
    assert set(unhashable["img_name"]) == set(reasons) and len(written) == 3


def test_metrics_without_near_copies_equal_a_recomputation(tmp_path: Path, photos) -> None:
    from sklearn.metrics import roc_auc_score

    root = write_dataset(tmp_path / "data", photos, unrelated=range(10, 18))
    labels = pd.read_csv(root / "valset_label.txt")
    rng = np.random.default_rng(3)
    labels["score"] = np.round(np.clip(labels["target"] * 0.3 + rng.uniform(0, 0.7, len(labels)), 0, 1), 6)
    predictions = tmp_path / "epoch-003.csv"
    labels.assign(pred=(labels["score"] > 0.5).astype(int)).to_csv(predictions, index=False)
    report = audit(root, predictions=predictions, workers=1)
    clean = labels[~labels["img_name"].isin(PLANTED)]
    leaky = labels[labels["img_name"].isin(PLANTED)]
    assert report.metrics["all"].auc == pytest.approx(roc_auc_score(labels["target"], labels["score"]))
    assert report.metrics["without"].images == len(clean)
    assert report.metrics["without"].auc == pytest.approx(roc_auc_score(clean["target"], clean["score"]))
    assert report.metrics["with"].auc == pytest.approx(roc_auc_score(leaky["target"], leaky["score"]))
    assert report.metrics["without"].accuracy == pytest.approx(((clean["score"] > 0.5) == clean["target"]).mean())
    assert "without a near-copy in training" in report.headline()


def test_auc_matches_scikit_learn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    target = rng.integers(0, 2, 500)
    score = np.round(rng.uniform(0, 1, 500), 1)  # many ties
    assert auc_score(target, score) == pytest.approx(roc_auc_score(target, score))
    assert auc_score(np.ones(4), np.arange(4)) is None


def test_hashes_are_cached_by_size_and_mtime(tmp_path: Path, photos) -> None:
    root = write_dataset(tmp_path / "data", photos)
    split = find_dataset(root).splits["val"]
    first = hash_split(split.folder, split.names, workers=1)
    assert first.cached == 0
    again = hash_split(split.folder, split.names, workers=1)
    assert again.cached == len(split) and np.array_equal(again.hashes, first.hashes)
    changed = split.folder / "other10.jpg"
    photos[0].save(changed, quality=90)  # now a copy of training photograph 0: must be hashed anew
    os.utime(changed, ns=(1, 1))
    third = hash_split(split.folder, split.names, workers=1)
    assert third.cached == len(split) - 1
    row = split.names.index("other10.jpg")
    assert not np.array_equal(third.hashes[row], first.hashes[row])


def test_the_process_pool_hashes_as_one_process_does(tmp_path: Path, photos, monkeypatch) -> None:
    import engine.data.hashes as hashes

    root = write_dataset(tmp_path / "data", photos)
    split = find_dataset(root).splits["val"]
    one = hash_split(split.folder, split.names, workers=1, use_cache=False)
    monkeypatch.setattr(hashes, "POOL_MIN_IMAGES", 1)
    monkeypatch.setattr(hashes, "CHUNK", 3)
    seen = []
    pooled = hash_split(split.folder, split.names, workers=2, use_cache=False,
                        on_progress=lambda done, total: seen.append((done, total)), progress_every=0)
    assert np.array_equal(one.hashes, pooled.hashes) and pooled.ok.all()
    assert seen[-1] == (len(split), len(split))


def test_faiss_and_numpy_find_the_same_pairs() -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2**63, size=(3000, 3), dtype=np.uint64)
    query = rng.integers(0, 2**63, size=(500, 3), dtype=np.uint64)
    for k in range(0, 500, 7):  # plant near ones: a few bits flipped of a base row's whole or window
        flips = np.uint64(sum(1 << int(b) for b in rng.choice(64, int(rng.integers(0, 9)), replace=False)))
        query[k, 0] = base[k * 5, k % 3] ^ flips
    ok_q, ok_b = np.ones(500, bool), np.ones(3000, bool)
    ok_b[35] = False  # an unhashable image is never paired
    slow = near_pairs(query, ok_q, base, ok_b, 8, use_faiss=False)
    fast = near_pairs(query, ok_q, base, ok_b, 8, use_faiss=True)
    for a, b in zip(slow, fast):
        assert np.array_equal(a, b)
    assert len(slow[0]) >= 60 and 35 not in set(slow[1].tolist())


def _copies_dataset(root: Path, photos, fake_groups: bool = False) -> Path:
    """Six photographs, each with three near-copies, spread over train and val on purpose (every group leaks)."""
    (root / "trainset").mkdir(parents=True)
    (root / "valset").mkdir()
    lines = {"train": ["img_name,target"], "val": ["img_name,target"]}
    variants = [lambda im: im, lambda im: im.resize((im.width // 2, im.height // 2)),
                lambda im: centre_crop(im, 0.8), lambda im: centre_crop(im, 0.64)]
    for p in range(12):
        for v, how in enumerate(variants):
            split = "train" if (p + v) % 2 == 0 else "val"
            name = f"p{p}v{v}.jpg"
            how(photos[p]).save(root / f"{split}set" / name, quality=90)
            target = int(p == 0) if fake_groups else (p + v) % 2 if p < 6 else v % 2
            lines[split].append(f"{name},{target}")
    for split, rows in lines.items():
        (root / f"{split}set_label.txt").write_text("\n".join(rows) + "\n")
    return root


def test_split_never_puts_a_planted_group_in_two_splits(tmp_path: Path, photos) -> None:
    root = _copies_dataset(tmp_path / "data", photos)
    before = audit(root, workers=1)
    assert before.flagged["val-train"] == 24  # every validation image has its photograph in training
    for seed in range(3):
        out = tmp_path / f"split{seed}"
        result = make_split(root, out, by="hash-group", val=0.3, seed=seed, workers=1)
        dataset = find_dataset(out)  # a valid dataset: label files resolve through the links
        train, val = dataset.splits["train"], dataset.splits["val"]
        assert len(train) + len(val) == 48 and len(val) == result.val
        photo_of = lambda name: name.split("/")[1].split("v")[0]
        assert not {photo_of(n) for n in train.names} & {photo_of(n) for n in val.names}
        assert 8 <= len(val) <= 20
        after = audit(out, workers=1)
        assert after.flagged["val-train"] == 0
    assert sorted(os.listdir(out)) == ["trainset", "trainset_label.txt", "valset", "valset_label.txt"]
    for folder in ("trainset", "valset"):  # label files and links only, no image copied
        assert all((out / folder / entry).is_symlink() for entry in os.listdir(out / folder))


def test_split_refuses_to_leave_a_class_empty_and_says_the_counts(tmp_path: Path, photos) -> None:
    root = _copies_dataset(tmp_path / "data", photos, fake_groups=True)  # every fake is a copy of photograph 0
    with pytest.raises(DataError) as caught:
        make_split(root, tmp_path / "out", val=0.2, seed=0, workers=1)
    message = str(caught.value)
    assert "val has no fake images" in message and "train 32 real, 4 fake; val 12 real, 0 fake" in message
    assert not (tmp_path / "out").exists()


def test_a_run_is_warned_when_the_last_audit_flagged_its_validation_split(tmp_path: Path, photos) -> None:
    root = write_dataset(tmp_path / "data", photos)
    dataset = find_dataset(root)
    assert leakage_warning(dataset) is None  # never audited
    audit(root, workers=1)
    warning = leakage_warning(dataset)
    assert warning is not None and "45%" in warning and "ffdv split" in warning
    (root / "valset_label.txt").write_text((root / "valset_label.txt").read_text() + "\n")
    assert leakage_warning(find_dataset(root)) is None  # the labels changed: the audit is stale


def test_cli_scan_leakage_and_split(tmp_path: Path, photos, capsys) -> None:
    from engine.cli import main

    root = write_dataset(tmp_path / "data", photos)
    assert main(["scan", str(root), "--leakage", "--workers", "1", "--out", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "45% of the validation images (5 of 11) have a near-copy in training" in out
    summary = json.loads((tmp_path / "report" / "leakage.json").read_text())
    assert summary["flagged"]["val-train"] == 5 and summary["pairs"] == 5
    assert len(pd.read_csv(tmp_path / "report" / "leakage_pairs.csv")) == 5
    refused = _copies_dataset(tmp_path / "copies", photos, fake_groups=True)
    assert main(["split", str(refused), "--out", str(tmp_path / "new"), "--workers", "1"]) == 2
    assert "leave a class empty" in capsys.readouterr().err


@pytest.mark.slow
def test_a_training_run_on_a_flagged_validation_split_says_so_first(tmp_path: Path, photos) -> None:
    from conftest import FAST_TRAIN

    from engine.cli import main
    from engine.contract.protocol import RunStarted, RunWarning, Step
    from engine.contract.runstore import RunPaths, read_events

    root = write_dataset(tmp_path / "data", photos)
    audit(root, workers=1)
    assert main(["train", "--data", str(root), "--runs", str(tmp_path / "runs"), *FAST_TRAIN, "--epochs", "1",
                 "--name", "leaky"]) == 0
    events = read_events(RunPaths(tmp_path / "runs" / "leaky").events)
    kinds = [type(e) for e in events]
    warning = next(e for e in events if isinstance(e, RunWarning) and e.code == "leaky_validation")
    assert "45% of its images have a near-copy in training" in warning.message
    assert kinds.index(RunStarted) < events.index(warning) < kinds.index(Step)


def off_centre_crop(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    """How datasets are made from one photograph: a crop keeping 80-95% of each side anywhere, rescaled to a square."""
    sx, sy = rng.uniform(0.8, 0.95, 2)
    w, h = round(img.width * sx), round(img.height * sy)
    left, top = int(rng.integers(0, img.width - w + 1)), int(rng.integers(0, img.height - h + 1))
    side = round(max(w, h) * rng.uniform(0.8, 1.2))
    return img.crop((left, top, left + w, top + h)).resize((side, side), Image.Resampling.BICUBIC)


@pytest.fixture(scope="module")
def tiles(photos) -> list[Image.Image]:
    """Distinct pictures: the four quarters of each photograph (no two share a pixel)."""
    out = []
    for img in photos:
        w, h = img.width // 2, img.height // 2
        out += [img.crop((x, y, x + w, y + h)) for x in (0, w) for y in (0, h)]
    return out


def test_off_centre_crops_are_found_and_unrelated_photographs_are_not(tmp_path: Path, tiles) -> None:
    """The issue's case: val = 60 crops of training pictures at random positions (rescaled, re-saved as JPEG 75-92)
    plus pictures that appear nowhere else. Centre windows alone found about a third of these crops."""
    rng = np.random.default_rng(11)
    train, unrelated = tiles[0::2], tiles[1::2]
    root = tmp_path / "data"
    (root / "trainset").mkdir(parents=True)
    (root / "valset").mkdir()
    for i, img in enumerate(train):
        img.save(root / "trainset" / f"t{i}.jpg", quality=92)
    sources = {}
    for k in range(60):
        source = int(rng.integers(0, len(train)))
        off_centre_crop(rng, train[source]).save(root / "valset" / f"crop{k}.jpg", quality=int(rng.integers(75, 93)))
        sources[f"crop{k}.jpg"] = f"t{source}.jpg"
    for i, img in enumerate(unrelated):
        img.save(root / "valset" / f"other{i}.jpg", quality=85)
    (root / "trainset_label.txt").write_text("img_name,target\n" + "".join(f"t{i}.jpg,{i % 2}\n" for i in range(len(train))))
    names = [*sources, *(f"other{i}.jpg" for i in range(len(unrelated)))]
    (root / "valset_label.txt").write_text("img_name,target\n" + "".join(f"{n},{k % 2}\n" for k, n in enumerate(names)))
    report = audit(root, workers=1)
    pairs = {(p.name, p.other_name) for p in report.pairs if p.split == "val"}
    found = sum((name, source) in pairs for name, source in sources.items())
    false = {name for name, _ in pairs if name.startswith("other")}
    wrong = {(name, other) for name, other in pairs if name.startswith("crop") and sources[name] != other}
    assert found >= 0.9 * len(sources), f"found {found} of {len(sources)} planted crops"
    assert len(false) <= 0.02 * len(unrelated), f"unrelated pictures paired: {sorted(false)}"
    assert len(wrong) <= 0.02 * len(sources), f"crops paired with the wrong picture: {sorted(wrong)}"
