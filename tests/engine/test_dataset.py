"""engine.data.dataset: finding splits, reading label files, and saying exactly what is wrong with them."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.contract.errors import DataError
from engine.data.dataset import Dataset, Split, find_dataset, load_split_folder, read_label_file, resolve_split

# ---------------------------------------------------------------- helpers


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


JPEG = _jpeg_bytes()


def make_images(folder: Path, names) -> None:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(JPEG)


def write_labels(path: Path, rows, header: str = "img_name,target") -> Path:
    lines = [header] + [f"{name},{target}" if target is not None else name for name, target in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_ffdi(root: Path, train: dict, val: dict, test=None, test_labels: str | None = None,
              test_file: str = "testset_label.txt") -> Path:
    """An FFDI-layout dataset; ``test`` is a list of names (unlabelled) or a dict (labelled)."""
    for split, rows in (("trainset", train), ("valset", val)):
        make_images(root / split, rows)
        write_labels(root / f"{split}_label.txt", rows.items())
    if test is not None:
        (root / "testset").mkdir(parents=True, exist_ok=True)
        make_images(root / "testset", test)
        if test_labels == "label":
            write_labels(root / test_file, test.items())
        elif test_labels == "list":
            write_labels(root / test_file, [(n, None) for n in test], header="img_name")
    return root


def make_folders(root: Path, split: str, real, fake) -> Path:
    make_images(root / split / "real", real)
    make_images(root / split / "fake", fake)
    return root


TRAIN = {"t3.jpg": 1, "t1.jpg": 0, "t2.jpg": 1, "t0.jpg": 0}  # not sorted: file order must be kept
VAL = {"v2.jpg": 0, "v1.jpg": 1}


@pytest.fixture
def split_dir(tmp_path) -> Path:
    """A split folder with a.jpg, b.jpg, c.jpg, d.jpg and sub/e.jpg; label files go beside it."""
    folder = tmp_path / "trainset"
    make_images(folder, ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "sub/e.jpg"])
    return folder


def label_error(path: Path, folder: Path, content: str | bytes, **kwargs) -> str:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_label_file(path, folder, **kwargs)
    return str(info.value)


def assert_actionable(message: str, path: Path, lines=()) -> None:
    assert str(path) in message
    assert "Fix:" in message
    for line in lines:
        assert re.search(rf"\bline {line}\b", message), f"line {line} not named in:\n{message}"


# ---------------------------------------------------------------- FFDI layout


def test_ffdi_layout_train_val_and_labelled_test(tmp_path):
    root = make_ffdi(tmp_path, TRAIN, VAL, test={"x1.jpg": 1, "x0.jpg": 0}, test_labels="label")
    dataset = find_dataset(root)
    assert isinstance(dataset, Dataset)
    assert dataset.layout == "ffdi"
    assert set(dataset.splits) == {"train", "val", "test"}

    train = dataset.split("train")
    assert train.name == "train"
    assert train.folder == root / "trainset"
    assert train.label_file == root / "trainset_label.txt"
    assert train.names == list(TRAIN)
    assert train.targets.dtype == np.int64
    assert train.targets.tolist() == list(TRAIN.values())
    assert train.labelled
    assert train.class_counts() == {"real": 2, "fake": 2}
    assert len(train) == 4

    val = dataset.split("val")
    assert val.names == ["v2.jpg", "v1.jpg"]
    assert val.targets.tolist() == [0, 1]

    test = dataset.split("test")
    assert test.name == "test"
    assert test.names == ["x1.jpg", "x0.jpg"]
    assert test.targets.tolist() == [1, 0]


def test_ffdi_test_split_without_label_file_is_the_sorted_folder(tmp_path):
    root = make_ffdi(tmp_path, TRAIN, VAL, test=["c.jpg", "a.png", "b.jpeg"])
    (root / "testset" / "notes.txt").write_text("not an image")
    test = find_dataset(root).split("test")
    assert test.names == ["a.png", "b.jpeg", "c.jpg"]
    assert test.targets is None
    assert not test.labelled
    assert test.class_counts() == {}
    assert test.layout == "list"


@pytest.mark.parametrize("file_name", ["testset_label.txt", "testset_list.txt"])
def test_ffdi_test_split_with_a_list_file_of_names_only(tmp_path, file_name):
    root = make_ffdi(tmp_path, TRAIN, VAL, test=["z.jpg", "y.jpg", "x.jpg"], test_labels="list", test_file=file_name)
    make_images(root / "testset", ["not_listed.jpg"])
    test = find_dataset(root).split("test")
    assert test.names == ["z.jpg", "y.jpg", "x.jpg"]  # the file's order, only the listed images
    assert test.targets is None
    assert test.label_file == root / file_name


def test_ffdi_without_test_split(tmp_path):
    dataset = find_dataset(make_ffdi(tmp_path, TRAIN, VAL))
    assert set(dataset.splits) == {"train", "val"}
    with pytest.raises(DataError, match=r"no 'test' split \(it has: train, val\)"):
        dataset.split("test")


def test_ffdi_train_folder_without_label_file(tmp_path):
    root = make_ffdi(tmp_path, TRAIN, VAL)
    (root / "trainset_label.txt").unlink()
    with pytest.raises(DataError) as info:
        find_dataset(root)
    message = str(info.value)
    assert str(root / "trainset_label.txt") in message
    assert "not found" in message
    assert "Fix:" in message


def test_ffdi_label_file_without_its_image_folder(tmp_path):
    root = make_ffdi(tmp_path, TRAIN, VAL)
    for f in (root / "valset").iterdir():
        f.unlink()
    (root / "valset").rmdir()
    with pytest.raises(DataError) as info:
        find_dataset(root)
    assert str(root / "valset") in str(info.value)
    assert "does not exist" in str(info.value)


def test_ffdi_check_files_false_does_not_need_the_images(tmp_path):
    root = make_ffdi(tmp_path, TRAIN, VAL)
    (root / "trainset" / "t2.jpg").unlink()
    with pytest.raises(DataError, match="t2.jpg"):
        find_dataset(root)
    assert find_dataset(root, check_files=False).split("train").names == list(TRAIN)


# ---------------------------------------------------------------- image-folder layout


def test_image_folder_layout(tmp_path):
    root = make_folders(tmp_path, "train", real=["r2.jpg", "r1.jpg"], fake=["f1.png", "sub/f2.jpg"])
    make_folders(root, "val", real=["vr.jpg"], fake=["vf.jpg"])
    make_images(root / "test", ["q2.jpg", "q1.jpg"])
    dataset = find_dataset(root)
    assert dataset.layout == "folders"
    assert set(dataset.splits) == {"train", "val", "test"}

    train = dataset.split("train")
    assert train.layout == "folders"
    assert dict(zip(train.names, train.targets.tolist())) == {
        "real/r1.jpg": 0, "real/r2.jpg": 0, "fake/f1.png": 1, "fake/sub/f2.jpg": 1,
    }
    assert train.class_counts() == {"real": 2, "fake": 2}
    assert all((train.folder / n).is_file() for n in train.names)

    val = dataset.split("val")
    assert dict(zip(val.names, val.targets.tolist())) == {"real/vr.jpg": 0, "fake/vf.jpg": 1}

    test = dataset.split("test")
    assert test.names == ["q1.jpg", "q2.jpg"]
    assert test.targets is None


def test_image_folder_layout_accepts_valid_and_capitalised_class_folders(tmp_path):
    make_images(tmp_path / "train" / "Real", ["a.jpg"])
    make_images(tmp_path / "train" / "FAKE", ["b.jpg"])
    make_folders(tmp_path, "valid", real=["c.jpg"], fake=["d.jpg"])
    dataset = find_dataset(tmp_path)
    assert dict(zip(dataset.split("train").names, dataset.split("train").targets.tolist())) == {
        "Real/a.jpg": 0, "FAKE/b.jpg": 1,
    }
    assert dataset.split("val").folder == tmp_path / "valid"


def test_image_folder_train_without_class_folders(tmp_path):
    make_images(tmp_path / "train", ["a.jpg"])
    with pytest.raises(DataError) as info:
        find_dataset(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "train") in message
    assert "real/ and fake/" in message
    assert "Fix:" in message


def test_image_folder_class_folders_without_images(tmp_path):
    (tmp_path / "train" / "real").mkdir(parents=True)
    (tmp_path / "train" / "fake").mkdir()
    with pytest.raises(DataError, match="no images in"):
        find_dataset(tmp_path)


# ---------------------------------------------------------------- label file problems


def test_missing_image_is_listed_with_its_line(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    message = label_error(path, split_dir, "img_name,target\na.jpg,1\nzz.jpg,0\nb.jpg,1\nyy.jpg,0\n")
    assert_actionable(message, path, lines=(3, 5))
    assert "'zz.jpg' is not in" in message
    assert "'yy.jpg' is not in" in message
    assert "line 2" not in message and "line 4" not in message


@pytest.mark.parametrize(
    ("value", "shown"), [("2", "'2'"), ("fake", "'fake'"), ("", "''"), ("-1", "'-1'"), ("0.5", "'0.5'")],
    ids=["2", "fake", "empty", "-1", "0.5"],
)
def test_target_other_than_0_or_1(split_dir, value, shown):
    path = split_dir.parent / "trainset_label.txt"
    message = label_error(path, split_dir, f"img_name,target\na.jpg,1\nb.jpg,{value}\nc.jpg,0\n")
    assert_actionable(message, path, lines=(3,))
    assert f"target {shown} is not 0 or 1" in message
    assert "line 2" not in message and "line 4" not in message


def test_all_bad_targets_listed_together(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    message = label_error(path, split_dir, "img_name,target\na.jpg,2\nb.jpg,fake\nc.jpg,\nd.jpg,1\n")
    assert_actionable(message, path, lines=(2, 3, 4))
    assert "(3 in total)" in message


def test_targets_with_spaces_and_1_0_are_accepted(split_dir):
    path = write_labels(split_dir.parent / "trainset_label.txt", [("a.jpg", " 1"), ("b.jpg", "0 "), ("c.jpg", "1.0")])
    assert read_label_file(path, split_dir).targets.tolist() == [1, 0, 1]


def test_duplicate_name_says_which_line_it_repeats(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    message = label_error(path, split_dir, "img_name,target\na.jpg,1\nb.jpg,0\nc.jpg,1\na.jpg,0\n")
    assert_actionable(message, path, lines=(5,))
    assert "line 5: 'a.jpg' repeats line 2" in message


def test_absolute_path_rejected(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    absolute = str(split_dir / "a.jpg")  # even one that exists
    message = label_error(path, split_dir, f"img_name,target\nb.jpg,0\n{absolute},1\nC:\\img\\c.jpg,0\n")
    assert_actionable(message, path, lines=(3, 4))
    assert "absolute path" in message


@pytest.mark.parametrize("name", ["../a.jpg", "sub/../a.jpg", "..\\a.jpg", ".."])
def test_dotdot_in_name_rejected(split_dir, name):
    path = split_dir.parent / "trainset_label.txt"
    message = label_error(path, split_dir, f"img_name,target\nb.jpg,0\n{name},1\n")
    assert_actionable(message, path, lines=(3,))
    assert "contains '..'" in message


def test_dots_inside_a_name_are_fine(split_dir):
    make_images(split_dir, ["a..b.jpg"])
    path = write_labels(split_dir.parent / "trainset_label.txt", [("a..b.jpg", 1)])
    assert read_label_file(path, split_dir).names == ["a..b.jpg"]


def test_empty_split_header_only(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    message = label_error(path, split_dir, "img_name,target\n")
    assert_actionable(message, path)
    assert "no images listed" in message


def test_zero_byte_label_file(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    message = label_error(path, split_dir, b"")
    assert_actionable(message, path)
    assert "empty" in message


@pytest.mark.parametrize("header", ["name,label", "img,target", "image_name;target", "target,name"])
def test_malformed_header(split_dir, header):
    path = split_dir.parent / "trainset_label.txt"
    message = label_error(path, split_dir, f"{header}\na.jpg,1\n")
    assert_actionable(message, path, lines=(1,))
    assert "malformed header" in message
    assert "img_name,target" in message


def test_header_without_target_for_a_labelled_split(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    message = label_error(path, split_dir, "img_name\na.jpg\n", need_target=True)
    assert_actionable(message, path, lines=(1,))
    assert "malformed header" in message


def test_no_header_line(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    message = label_error(path, split_dir, "a.jpg,1\nb.jpg,0\n")
    assert_actionable(message, path, lines=(1,))
    assert "no header line" in message
    assert "img_name,target" in message


def test_no_header_line_in_a_list_file(split_dir):
    path = split_dir.parent / "trainset_list.txt"
    message = label_error(path, split_dir, "a.jpg\nb.jpg\n", need_target=False)
    assert_actionable(message, path, lines=(1,))
    assert "no header line" in message


def test_wrong_number_of_fields_lists_every_bad_line(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    message = label_error(path, split_dir, "img_name,target\na.jpg,1\nb.jpg\nc.jpg,0,extra\nd.jpg,1\na,b,c,d\n")
    assert_actionable(message, path, lines=(3, 4, 6))
    assert "wrong number of fields" in message
    assert "line 2" not in message and "line 5" not in message
    assert "(3 in total)" in message


@pytest.mark.parametrize(
    "content",
    ["img_name,target\na.jpg,1,extra\nb.jpg,0\n", "img_name,target\na.jpg,1,x\nb.jpg,0,y\n"],
    ids=["first-line", "every-line"],
)
def test_extra_field_on_the_first_data_line_is_reported_not_a_crash(split_dir, content):
    # pandas takes a first data row with one field more than the header as an index column
    path = split_dir.parent / "trainset_label.txt"
    message = label_error(path, split_dir, content)
    assert_actionable(message, path, lines=(2,))


def test_line_with_a_missing_target_is_reported(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    message = label_error(path, split_dir, "img_name,target\na.jpg,1\nb.jpg\nc.jpg,0\n")
    assert_actionable(message, path, lines=(3,))


def test_non_utf8_file_names_file_line_and_fix(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    message = label_error(path, split_dir, b"img_name,target\na.jpg,1\ncaf\xe9.jpg,0\n")
    assert_actionable(message, path, lines=(3,))
    assert "UTF-8" in message


def test_non_utf8_byte_deep_in_a_large_file_is_located_correctly(split_dir, tmp_path):
    path = split_dir.parent / "trainset_label.txt"
    body = b"".join(b"x%07d.jpg,%d\n" % (i, i % 2) for i in range(40_000))  # 600,000 bytes
    content = b"img_name,target\n" + body + b"caf\xe9.jpg,0\n"
    message = label_error(path, split_dir, content, check_files=False)
    assert str(path) in message
    assert "byte 4 of the line" in message, message  # the offset inside the named line
    assert re.search(r"\bline 40002\b", message), message


def test_more_than_20_offenders_lists_20_and_the_total(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    rows = "".join(f"img{i}.jpg,7\n" for i in range(25))
    message = label_error(path, split_dir, "img_name,target\n" + rows)
    assert_actionable(message, path, lines=range(2, 22))
    assert not re.search(r"\bline 22\b", message)
    assert "... and 5 more (25 in total)" in message
    assert message.count("is not 0 or 1") == 20


def test_several_kinds_of_problem_are_all_reported(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    message = label_error(path, split_dir, "img_name,target\na.jpg,1\n/abs.jpg,0\nb.jpg,9\na.jpg,0\n")
    assert_actionable(message, path, lines=(3, 4, 5))
    assert "absolute path" in message
    assert "not 0 or 1" in message
    assert "repeats line 2" in message
    assert message.count("Fix:") == 3


def test_bom_and_crlf_file_accepted(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    path.write_bytes(b"\xef\xbb\xbfimg_name,target\r\na.jpg,1\r\nb.jpg,0\r\nc.jpg,1\r\n")
    split = read_label_file(path, split_dir)
    assert split.names == ["a.jpg", "b.jpg", "c.jpg"]
    assert split.targets.tolist() == [1, 0, 1]


def test_crlf_file_without_final_newline_accepted(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    path.write_bytes(b"img_name,target\r\na.jpg,1\r\nb.jpg,0")
    split = read_label_file(path, split_dir)
    assert split.names == ["a.jpg", "b.jpg"]
    assert split.targets.tolist() == [1, 0]


def test_blank_lines_are_ignored_and_later_line_numbers_stay_right(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    path.write_text("img_name,target\n\na.jpg,1\n\n\nb.jpg,0\n\n")
    split = read_label_file(path, split_dir)
    assert split.names == ["a.jpg", "b.jpg"]
    assert split.targets.tolist() == [1, 0]

    message = label_error(path, split_dir, "img_name,target\n\na.jpg,1\n\n\nb.jpg,5\nzz.jpg,1\n\n")
    assert_actionable(message, path, lines=(6,))  # b.jpg,5 is the 6th line of the file
    assert "'5'" in message


def test_blank_lines_keep_missing_image_line_numbers_right(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    message = label_error(path, split_dir, "img_name,target\n\n\na.jpg,1\n\nzz.jpg,0\n")
    assert_actionable(message, path, lines=(6,))


def test_whitespace_only_line_is_ignored_like_a_blank_line(split_dir):
    path = split_dir.parent / "trainset_label.txt"
    path.write_text("img_name,target\na.jpg,1\n   \nb.jpg,0\n")
    split = read_label_file(path, split_dir)
    assert split.names == ["a.jpg", "b.jpg"]


def test_names_with_subfolders_are_checked_for_existence(split_dir):
    path = write_labels(split_dir.parent / "trainset_label.txt", [("sub/e.jpg", 1), ("a.jpg", 0)])
    split = read_label_file(path, split_dir)
    assert split.names == ["sub/e.jpg", "a.jpg"]

    message = label_error(path, split_dir, "img_name,target\nsub/e.jpg,1\nsub/zz.jpg,0\nnosub/a.jpg,1\nsub,0\n")
    assert_actionable(message, path, lines=(3, 4))
    assert "'sub/zz.jpg' is not in" in message
    assert "'nosub/a.jpg' is not in" in message


def test_label_file_not_found(split_dir):
    path = split_dir.parent / "nothing_label.txt"
    with pytest.raises(DataError) as info:
        read_label_file(path, split_dir)
    assert_actionable(str(info.value), path)


def test_split_name_defaults_to_folder_name(split_dir):
    path = write_labels(split_dir.parent / "trainset_label.txt", [("a.jpg", 1)])
    assert read_label_file(path, split_dir).name == "trainset"
    assert read_label_file(path, split_dir, split="train").name == "train"


def test_million_row_label_file_parses(tmp_path):
    path = tmp_path / "trainset_label.txt"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("img_name,target\n")
        for i in range(1_000_000):
            fh.write(f"img_{i:07d}.jpg,{1 if i % 3 == 0 else 0}\n")
    start = time.perf_counter()
    split = read_label_file(path, tmp_path / "trainset", check_files=False)
    elapsed = time.perf_counter() - start
    print(f"\n1,000,000-row label file parsed in {elapsed:.2f} s")
    assert len(split) == 1_000_000
    assert split.names[0] == "img_0000000.jpg"
    assert split.names[-1] == "img_0999999.jpg"
    assert split.names[123_457] == "img_0123457.jpg"
    assert split.targets[0] == 1 and split.targets[1] == 0 and split.targets[999_999] == 1
    assert split.targets[123_457] == (1 if 123_457 % 3 == 0 else 0)
    assert int(split.targets.sum()) == 333_334


# ---------------------------------------------------------------- resolve_split


def test_resolve_split_on_split_folder_with_sibling_label_file(tmp_path):
    root = make_ffdi(tmp_path, TRAIN, VAL)
    split = resolve_split(root / "valset")
    assert split.names == ["v2.jpg", "v1.jpg"]
    assert split.targets.tolist() == [0, 1]
    assert split.label_file == root / "valset_label.txt"
    assert split.folder == root / "valset"


def test_resolve_split_on_label_file_path(tmp_path):
    root = make_ffdi(tmp_path, TRAIN, VAL)
    split = resolve_split(root / "trainset_label.txt")
    assert split.folder == root / "trainset"
    assert split.name == "trainset"
    assert split.names == list(TRAIN)
    assert split.targets.tolist() == list(TRAIN.values())


def test_resolve_split_on_list_file_path(tmp_path):
    root = make_ffdi(tmp_path, TRAIN, VAL, test=["b.jpg", "a.jpg"], test_labels="list", test_file="testset_list.txt")
    split = resolve_split(root / "testset_list.txt")
    assert split.folder == root / "testset"
    assert split.names == ["b.jpg", "a.jpg"]
    assert split.targets is None


def test_resolve_split_on_unrecognised_file(tmp_path):
    path = tmp_path / "labels.dat"  # a .csv is a filename,label list (docs/layouts.md)
    path.write_text("img_name,target\n")
    with pytest.raises(DataError, match="cannot tell which image folder"):
        resolve_split(path)


def test_resolve_split_on_dataset_root_with_split_test(tmp_path):
    root = make_ffdi(tmp_path, TRAIN, VAL, test=["b.jpg", "a.jpg"])
    split = resolve_split(root, split="test")
    assert split.name == "test"
    assert split.folder == root / "testset"
    assert split.names == ["a.jpg", "b.jpg"]
    assert split.targets is None


def test_resolve_split_on_dataset_root_defaults_to_val(tmp_path):
    root = make_ffdi(tmp_path, TRAIN, VAL, test=["a.jpg"])
    split = resolve_split(root)
    assert split.name == "val"
    assert split.names == ["v2.jpg", "v1.jpg"]


def test_resolve_split_on_dataset_root_with_unknown_split(tmp_path):
    root = make_ffdi(tmp_path, TRAIN, VAL)
    with pytest.raises(DataError, match="no 'test' split"):
        resolve_split(root, split="test")


def test_resolve_split_on_bare_folder_of_images(tmp_path):
    folder = tmp_path / "photos"
    make_images(folder, ["c.jpg", "a.JPG", "b.png", "d.webp"])
    (folder / "readme.txt").write_text("x")
    (folder / "nested").mkdir()
    make_images(folder / "nested", ["z.jpg"])
    split = resolve_split(folder)
    assert split.names == ["a.JPG", "b.png", "c.jpg", "d.webp"]
    assert split.targets is None
    assert not split.labelled
    assert split.label_file is None
    assert split.layout == "list"
    assert split.name == "photos"


def test_resolve_split_on_folder_with_real_and_fake(tmp_path):
    folder = tmp_path / "holdout"
    make_images(folder / "real", ["r.jpg"])
    make_images(folder / "fake", ["f1.jpg", "f2.jpg"])
    split = resolve_split(folder)
    assert split.layout == "folders"
    assert dict(zip(split.names, split.targets.tolist())) == {"real/r.jpg": 0, "fake/f1.jpg": 1, "fake/f2.jpg": 1}
    assert split.class_counts() == {"real": 1, "fake": 2}


def test_resolve_split_with_explicit_labels_file(tmp_path):
    folder = tmp_path / "imgs"
    make_images(folder, ["a.jpg", "b.jpg"])
    labels = write_labels(tmp_path / "whatever.csv", [("b.jpg", 1), ("a.jpg", 0)])
    split = resolve_split(folder, labels=labels)
    assert split.names == ["b.jpg", "a.jpg"]
    assert split.targets.tolist() == [1, 0]


def test_resolve_split_on_empty_folder(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(DataError, match="no images here"):
        resolve_split(folder)


def test_resolve_split_on_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        resolve_split(tmp_path / "missing")


def test_load_split_folder_propagates_label_problems(tmp_path):
    folder = tmp_path / "valset"
    make_images(folder, ["a.jpg"])
    (tmp_path / "valset_label.txt").write_text("img_name,target\na.jpg,1\nb.jpg,0\n")
    with pytest.raises(DataError, match=r"line 3: 'b.jpg' is not in"):
        load_split_folder(folder)


# ---------------------------------------------------------------- not a dataset


def test_find_dataset_on_non_dataset_folder_says_what_it_expected(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError) as info:
        find_dataset(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "not a dataset" in message
    assert "trainset/" in message and "trainset_label.txt" in message
    assert "train/real/" in message
    assert "found: notes.txt, photos" in message


def test_find_dataset_on_empty_folder(tmp_path):
    with pytest.raises(DataError, match="found: an empty folder"):
        find_dataset(tmp_path)


def test_find_dataset_on_missing_folder(tmp_path):
    with pytest.raises(DataError, match="dataset folder not found"):
        find_dataset(tmp_path / "nope")


def test_split_class_counts_and_len():
    split = Split("x", Path("."), ["a", "b", "c"], np.array([1, 1, 0], dtype=np.int64))
    assert len(split) == 3
    assert split.class_counts() == {"real": 1, "fake": 2}
