"""engine.data.scan: the dataset health scan (statistics, image problems, label-file problems, progress, cancel)."""

from __future__ import annotations

import itertools
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.data.scan import ScanReport, scan_dataset

REPO = Path(__file__).resolve().parents[2]
SAMPLE_DATA = REPO / "sample_data"


def noise(size: tuple[int, int], seed: int = 0, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")
    return img.convert(mode) if mode != "RGB" else img


def write_ffdi(root: Path, counts: dict[str, int], labelled_test: bool = False, size=(48, 40)) -> Path:
    """trainset/valset with label files (image i on line i + 2), testset/ unlabelled unless labelled_test."""
    for split, n in counts.items():
        folder = root / f"{split}set"
        folder.mkdir(parents=True)
        lines = ["img_name,target"]
        for i in range(n):
            name = f"{split}{i:03d}.jpg"
            noise(size, seed=i).save(folder / name, quality=90)
            lines.append(f"{name},{i % 2}")
        if split != "test" or labelled_test:
            (root / f"{split}set_label.txt").write_text("\n".join(lines) + "\n")
    return root


def png_header_only(path: Path, width: int, height: int) -> None:
    """A valid PNG signature, IHDR and IEND (no pixel data): Image.open reads its size, nothing decodes it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def kinds(report: ScanReport) -> set[tuple[str, str, int | None, str]]:
    return {(i.split, i.name, i.line, i.kind) for i in report.issues}


def issue(report: ScanReport, kind: str):
    found = [i for i in report.issues if i.kind == kind]
    assert len(found) == 1, (kind, report.issues)
    return found[0]


# ---------------------------------------------------------------- healthy


def test_sample_data_is_healthy_with_its_counts():
    report = scan_dataset(SAMPLE_DATA)
    assert report.error is None and report.layout == "ffdi"
    assert report.issues == [] and report.label_problems == []
    assert report.done and not report.cancelled
    expected = {"train": (384, 192, 192), "val": (128, 64, 64), "test": (88, 44, 44)}
    assert {k: (s.images, s.real, s.fake) for k, s in report.splits.items()} == expected
    for split, stats in report.splits.items():
        n = expected[split][0]
        assert stats.scanned == n
        assert stats.formats == {"JPEG": n}
        assert stats.modes == {"RGB": n}
        (w0, h0), (w1, h1) = stats.min_size, stats.max_size
        assert w0 * h0 <= w1 * h1
        assert all(130 <= side <= 200 for side in (w0, h0, w1, h1)), (stats.min_size, stats.max_size)
    assert report.ok


def test_sizes_are_the_smallest_and_largest_area(tmp_path):
    root = write_ffdi(tmp_path / "data", {"train": 3, "val": 2})
    noise((40, 200)).save(root / "trainset" / "train000.jpg")  # 8000 px: the largest, though not the widest
    noise((90, 60)).save(root / "trainset" / "train001.jpg")  # 5400 px
    noise((33, 50)).save(root / "trainset" / "train002.jpg")  # 1650 px: the smallest
    stats = scan_dataset(root).splits["train"]
    assert stats.min_size == (33, 50)
    assert stats.max_size == (40, 200)


# ---------------------------------------------------------------- broken


@pytest.fixture
def broken(tmp_path) -> Path:
    """One problem of each kind; image i of a split is on line i + 2 of its label file."""
    root = write_ffdi(tmp_path / "data", {"train": 10, "val": 8, "test": 4})
    train, val = root / "trainset", root / "valset"
    (train / "train001.jpg").unlink()  # line 3: missing
    (train / "train002.jpg").write_bytes(b"")  # line 4: empty
    noise((160, 120), seed=7).save(train / "train003.jpg", quality=95)  # line 5: truncated (cut in half)
    data = (train / "train003.jpg").read_bytes()
    (train / "train003.jpg").write_bytes(data[: len(data) // 2])
    (train / "train004.jpg").write_text("this is not an image\n")  # line 6: unreadable
    noise((16, 16)).save(train / "train005.jpg")  # line 7: tiny
    noise((48, 40)).save(val / "val001.jpg", format="PNG")  # line 3: a PNG named .jpg
    noise((48, 40), mode="CMYK").save(val / "val002.jpg")  # line 4: CMYK
    label = root / "valset_label.txt"
    lines = label.read_text().splitlines()
    lines[4] = "val003.jpg,7"  # line 5: a target the engine rejects
    label.write_text("\n".join(lines) + "\n")
    return root


def test_every_problem_has_its_kind_name_and_line(broken):
    report = scan_dataset(broken)
    assert report.error is None and report.layout == "ffdi" and report.done
    assert kinds(report) == {
        ("train", "train001.jpg", 3, "missing"),
        ("train", "train002.jpg", 4, "empty"),
        ("train", "train003.jpg", 5, "truncated"),
        ("train", "train004.jpg", 6, "unreadable"),
        ("train", "train005.jpg", 7, "tiny"),
        ("val", "val001.jpg", 3, "format"),
        ("val", "val002.jpg", 4, "mode"),
    }
    assert not report.ok


def test_messages_name_the_file_and_the_fix(broken):
    report = scan_dataset(broken)
    train, val = broken / "trainset", broken / "valset"
    for i in report.issues:
        folder = train if i.split == "train" else val
        assert i.message.startswith(f"{folder / i.name}: "), i.message
        assert "\n" not in i.message
    assert "line 3 of trainset_label.txt" in issue(report, "missing").message
    assert "empty file (0 bytes)" in issue(report, "empty").message  # engine.data.images' words
    assert issue(report, "empty").message.endswith("or delete it and line 4 of trainset_label.txt")
    assert "truncated JPEG (no end-of-image marker)" in issue(report, "truncated").message
    assert "re-export" in issue(report, "truncated").message
    # PIL's reason, as engine.data.images gives it, without repeating the path
    assert "unreadable image (cannot identify image file); replace it" in issue(report, "unreadable").message
    assert "16x16" in issue(report, "tiny").message
    assert "a PNG file named .jpg" in issue(report, "format").message
    assert "rename it to .png" in issue(report, "format").message
    assert "CMYK image: converted to RGB when loaded" in issue(report, "mode").message


def test_a_broken_label_file_is_reported_in_the_engines_words_and_its_images_still_scanned(broken):
    report = scan_dataset(broken)
    assert len(report.label_problems) == 1
    problem = report.label_problems[0]
    assert problem.startswith(f"{broken / 'valset_label.txt'}: targets other than 0 or 1")
    assert "line 5: target '7' is not 0 or 1" in problem
    assert "Fix: use 1 for fake and 0 for real" in problem
    val = report.splits["val"]
    assert (val.images, val.scanned) == (8, 8)
    assert (val.real, val.fake) == (4, 3)  # the line with target 7 counts as neither
    assert val.formats == {"JPEG": 7, "PNG": 1}
    assert val.modes == {"RGB": 7, "CMYK": 1}


def test_the_other_splits_are_still_scanned(broken):
    report = scan_dataset(broken)
    train, test = report.splits["train"], report.splits["test"]
    assert (train.images, train.real, train.fake, train.scanned) == (10, 5, 5, 10)
    assert train.formats == {"JPEG": 7}  # missing, empty and unreadable files have no format
    assert train.min_size == (16, 16) and train.max_size == (160, 120)
    assert train.issue_counts == {"missing": 1, "empty": 1, "truncated": 1, "unreadable": 1, "tiny": 1}
    assert (test.images, test.real, test.fake, test.scanned) == (4, None, None, 4)  # folder only: unlabelled


def test_huge_image_is_reported_as_still_trained_on(tmp_path):
    root = write_ffdi(tmp_path / "data", {"train": 2, "val": 2})
    png_header_only(root / "trainset" / "big.png", 9000, 6000)
    with open(root / "trainset_label.txt", "a") as fh:
        fh.write("big.png,1\n")
    report = scan_dataset(root)
    assert kinds(report) == {("train", "big.png", 4, "huge")}
    message = report.issues[0].message
    assert "9000x6000" in message and "54 megapixels" in message and "still trains on it" in message
    assert report.splits["train"].max_size == (9000, 6000)
    assert report.splits["train"].formats == {"JPEG": 2, "PNG": 1}


def test_a_label_file_without_header_still_lists_its_images(tmp_path):
    root = write_ffdi(tmp_path / "data", {"train": 4, "val": 2})
    label = root / "trainset_label.txt"
    label.write_text("\n".join(label.read_text().splitlines()[1:]) + "\n")  # drop the header
    (root / "trainset" / "train002.jpg").unlink()  # now on line 3
    report = scan_dataset(root)
    assert len(report.label_problems) == 1
    assert "line 1: the file has no header line" in report.label_problems[0]
    assert "Fix: add the line 'img_name,target'" in report.label_problems[0]
    train = report.splits["train"]
    assert (train.images, train.real, train.fake, train.scanned) == (4, 2, 2, 4)
    assert kinds(report) == {("train", "train002.jpg", 3, "missing")}
    assert report.splits["val"].scanned == 2


def test_line_numbers_count_blank_lines(tmp_path):
    root = write_ffdi(tmp_path / "data", {"train": 4, "val": 2})
    label = root / "trainset_label.txt"
    lines = label.read_text().splitlines()
    label.write_text("\n".join(lines[:2] + ["", "   "] + lines[2:]) + "\n")  # blank lines 3 and 4
    (root / "trainset" / "train002.jpg").unlink()  # was line 4, now line 6
    report = scan_dataset(root)
    assert report.label_problems == []
    assert kinds(report) == {("train", "train002.jpg", 6, "missing")}


def test_a_missing_split_folder_is_one_problem_not_one_per_image(tmp_path):
    root = write_ffdi(tmp_path / "data", {"train": 3, "val": 2})
    for f in (root / "valset").iterdir():
        f.unlink()
    (root / "valset").rmdir()
    report = scan_dataset(root)
    assert report.label_problems == [
        f"{root / 'valset'}: the image folder of this split does not exist. Fix: put the images there."
    ]
    assert report.issues == []
    assert (report.splits["val"].images, report.splits["val"].scanned) == (2, 0)
    assert report.splits["train"].scanned == 3


def test_issues_beyond_the_cap_are_counted_not_listed(tmp_path):
    root = write_ffdi(tmp_path / "data", {"train": 6, "val": 2})
    for i in range(5):
        (root / "trainset" / f"train{i:03d}.jpg").unlink()
    report = scan_dataset(root, max_issues_per_kind=2)
    assert [(i.name, i.line) for i in report.issues] == [("train000.jpg", 2), ("train001.jpg", 3)]
    assert report.splits["train"].issue_counts == {"missing": 5}


# ---------------------------------------------------------------- not a dataset


def test_a_folder_that_is_not_a_dataset_gives_the_engines_message(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "pictures").mkdir()
    report = scan_dataset(tmp_path)
    assert report.layout == "" and report.splits == {} and report.issues == []
    assert report.error.startswith(f"{tmp_path}: not a dataset in any layout this tool reads; found: notes.txt, pictures.")
    assert "found: notes.txt, pictures" in report.error
    assert report.done


def test_a_missing_folder_gives_the_engines_message(tmp_path):
    calls = []
    report = scan_dataset(tmp_path / "nope", on_progress=calls.append)
    assert report.error == f"{tmp_path / 'nope'}: dataset folder not found. Fix: pass --data with the folder " \
                           "that holds trainset/."
    assert report.layout == "" and calls and calls[-1].done


# ---------------------------------------------------------------- progress and cancel


def test_progress_is_reported_before_images_and_grows(tmp_path):
    root = write_ffdi(tmp_path / "data", {"train": 10, "val": 6})
    (root / "trainset" / "train000.jpg").unlink()
    calls: list[ScanReport] = []
    report = scan_dataset(root, on_progress=calls.append, progress_every=0.0)
    assert len(calls) >= 3
    first = calls[0]
    assert first.scanned == 0 and not first.done  # counts known, no image opened yet
    assert {k: (s.images, s.real, s.fake) for k, s in first.splits.items()} == {"train": (10, 5, 5),
                                                                                 "val": (6, 3, 3)}
    scanned = [c.scanned for c in calls]
    assert scanned == sorted(scanned) and scanned[-1] == 16 and len(set(scanned)) >= 3
    assert calls[-1].done and calls[-1] is not report
    assert first.scanned == 0 and first.issues == []  # snapshots do not change afterwards
    assert len(calls[-1].issues) == 1


def test_default_progress_is_called_at_start_and_end():
    calls = []
    scan_dataset(SAMPLE_DATA, on_progress=lambda r: calls.append((r.scanned, r.done)))
    assert len(calls) >= 2
    assert calls[0] == (0, False)
    assert calls[-1] == (600, True)


def test_should_stop_cancels_between_images(tmp_path):
    root = write_ffdi(tmp_path / "data", {"train": 10, "val": 6})
    polls = itertools.count(1)
    calls = []
    report = scan_dataset(root, on_progress=calls.append, should_stop=lambda: next(polls) > 5)
    assert report.cancelled and not report.done
    assert report.scanned == 5
    assert report.splits["train"].scanned == 5 and report.splits["val"].scanned == 0
    assert calls[-1].cancelled


# ---------------------------------------------------------------- layouts and modes


def test_image_folder_layout(tmp_path):
    root = tmp_path / "data"
    for split, n in (("train", 3), ("val", 2)):
        for cls in ("real", "fake"):
            (root / split / cls).mkdir(parents=True)
            for i in range(n + (cls == "fake")):
                noise((40, 40), seed=i).save(root / split / cls / f"{cls}{i}.jpg")
    (root / "test").mkdir()
    for i in range(2):
        noise((40, 40), seed=i).save(root / "test" / f"t{i}.png")
    noise((20, 40)).save(root / "val" / "fake" / "fake0.jpg")
    report = scan_dataset(root)
    assert report.error is None and report.layout == "folders"
    assert {k: (s.images, s.real, s.fake, s.scanned) for k, s in report.splits.items()} == {
        "train": (7, 3, 4, 7), "val": (5, 2, 3, 5), "test": (2, None, None, 2)}
    assert report.splits["test"].formats == {"PNG": 2}
    assert kinds(report) == {("val", "fake/fake0.jpg", None, "tiny")}
    assert report.issues[0].message.startswith(f"{root / 'val' / 'fake' / 'fake0.jpg'}: tiny image (20x40")


def test_folder_layout_without_class_folders_is_a_problem_of_that_split(tmp_path):
    root = tmp_path / "data"
    (root / "train" / "real").mkdir(parents=True)
    (root / "train" / "fake").mkdir()
    noise((40, 40)).save(root / "train" / "real" / "a.jpg")
    noise((40, 40)).save(root / "train" / "fake" / "b.jpg")
    (root / "val").mkdir()
    noise((40, 40)).save(root / "val" / "c.jpg")
    report = scan_dataset(root)
    assert report.layout == "folders" and report.error is None
    assert report.label_problems == [
        f"{root / 'val'}: expected class folders real/ and fake/ (or <generator>/0_real/ and <generator>/1_fake/) "
        "inside. Fix: sort the images into them."]
    assert report.splits["train"].scanned == 2
    assert (report.splits["val"].images, report.splits["val"].real, report.splits["val"].scanned) == (1, None, 1)


def test_check_images_false_gives_stats_without_opening_images(tmp_path):
    root = write_ffdi(tmp_path / "data", {"train": 4, "val": 2})
    (root / "trainset" / "train000.jpg").write_bytes(b"")
    (root / "trainset" / "train001.jpg").unlink()
    calls = []
    report = scan_dataset(root, on_progress=calls.append, check_images=False)
    assert report.done and report.issues == []
    assert {k: (s.images, s.real, s.fake, s.scanned, s.formats) for k, s in report.splits.items()} == {
        "train": (4, 2, 2, 0, {}), "val": (2, 1, 1, 0, {})}
    assert len(calls) == 2


@pytest.mark.parametrize("mode, note", [
    ("RGBA", "RGBA image: converted to RGB when loaded"),
    ("P", "palette image: converted to RGB when loaded"),
    ("I;16", "scaled to 8-bit RGB when loaded"),
])
def test_other_modes_are_information(tmp_path, mode, note):
    root = write_ffdi(tmp_path / "data", {"train": 2, "val": 2})
    img = noise((40, 40)).convert("L").convert(mode) if mode == "I;16" else noise((40, 40)).convert(mode)
    img.save(root / "trainset" / "x.png")
    with open(root / "trainset_label.txt", "a") as fh:
        fh.write("x.png,0\n")
    report = scan_dataset(root)
    found = issue(report, "mode")
    assert (found.name, found.line) == ("x.png", 4) and note in found.message
    assert len(report.issues) == 1 and report.ok
    assert report.splits["train"].modes == {"RGB": 2, mode: 1}


def test_an_empty_label_file_still_lets_the_folders_images_be_checked(tmp_path):
    root = write_ffdi(tmp_path / "data", {"train": 3, "val": 2})
    (root / "trainset_label.txt").write_bytes(b"")
    (root / "trainset" / "train001.jpg").write_bytes(b"")
    report = scan_dataset(root)
    assert report.label_problems == [f"{root / 'trainset_label.txt'}: the label file is empty. Fix: write the header "
                                     "line img_name,target and one line per image."]
    train = report.splits["train"]
    assert (train.images, train.real, train.fake, train.scanned) == (3, None, None, 3)
    assert kinds(report) == {("train", "train001.jpg", None, "empty")}
    assert issue(report, "empty").message.endswith("copy the image again or delete it")
