"""Fault injection for the evaluation matrix (issue 24): each case showed a wrong number as right, touched files the
tool did not own, or stopped a whole matrix on one image, before its fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_ffdi
from PIL import Image
from test_matrix import make_checkpoint

from engine.cli import main

COMMON = ["--batch-size", "8", "--workers", "0", "--device", "cpu"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile-runs")
    make_checkpoint(root / "a", seed=0)
    make_checkpoint(root / "b", seed=1)
    make_checkpoint(root / "e", seed=3, img_size=64)
    return root


def evaluate(*args: str) -> int:
    return main(["evaluate", *args, *COMMON])


def table(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "matrix.csv")


def cell(out: Path, model: str, perturbation: str = "none") -> pd.Series:
    t = table(out)
    found = t[(t["model"] == model) & (t["perturbation"] == perturbation)]
    assert len(found) == 1, (model, perturbation)
    return found.iloc[0]


def report(out: Path) -> dict:
    return json.loads((out / "matrix.json").read_text())


# ---------------------------------------------------------------- stale cells


def test_flipped_labels_or_cut_rows_reuse_nothing_and_give_the_true_auc(runs: Path, tmp_path: Path) -> None:
    data = write_ffdi(tmp_path / "data", {"val": 24}, seed=2, size=40)
    out = tmp_path / "m"
    args = ["--checkpoint", str(runs / "a"), str(runs / "b"), "--data", str(data), "--perturb", "jpeg:75"]
    assert evaluate(*args, "--out", str(out)) == 0
    before = cell(out, "a", "jpeg:75")["auc"]
    labels = data / "valset_label.txt"
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join([lines[0], *(f"{n},{1 - int(t)}" for n, t in (x.split(",") for x in lines[1:]))]) + "\n")
    assert evaluate(*args, "--out", str(out)) == 0
    assert report(out)["cells"]["reused"] == []
    fresh = tmp_path / "fresh"
    assert evaluate(*args, "--out", str(fresh)) == 0
    for model in ("a", "b"):
        assert cell(out, model, "jpeg:75")["auc"] == cell(fresh, model, "jpeg:75")["auc"]
    assert cell(out, "a", "jpeg:75")["auc"] == pytest.approx(1 - before, abs=1e-9)
    labels.write_text("\n".join(lines[:11]) + "\n")  # cut to 10 rows
    assert evaluate(*args, "--out", str(out)) == 0
    assert report(out)["cells"]["reused"] == []
    assert (table(out)["images"] == 10).all()


def test_a_checkpoint_rewritten_in_place_is_scored_again(runs: Path, tmp_path: Path) -> None:
    import shutil

    data = write_ffdi(tmp_path / "data", {"val": 12}, seed=3, size=40)
    live = tmp_path / "live"
    shutil.copytree(runs / "a", live)
    out = tmp_path / "m"
    assert evaluate("--checkpoint", str(live), "--data", str(data), "--perturb", "jpeg:90", "--out", str(out)) == 0
    first = report(out)["settings"]["checkpoints"][0]["weights_sha256"]
    for suffix in ("safetensors", "json"):  # the run saved a new best with the same size and name
        shutil.copyfile(runs / "b" / "checkpoints" / f"best.{suffix}", live / "checkpoints" / f"best.{suffix}")
    assert evaluate("--checkpoint", str(live), "--data", str(data), "--perturb", "jpeg:90", "--out", str(out)) == 0
    assert report(out)["cells"]["reused"] == []
    assert report(out)["settings"]["checkpoints"][0]["weights_sha256"] != first
    fresh = tmp_path / "fresh"
    assert evaluate("--checkpoint", str(runs / "b"), "--data", str(data), "--perturb", "jpeg:90", "--out", str(fresh)) == 0
    assert cell(out, "live")["auc"] == cell(fresh, "b")["auc"]


# ---------------------------------------------------------------- a perturbation means one thing


def test_a_perturbation_gives_a_model_the_same_auc_alone_and_beside_a_larger_model(runs: Path, tmp_path: Path) -> None:
    data = write_ffdi(tmp_path / "data", {"val": 16}, seed=4, size=160)  # JPEG drafts: 40 px for a, 80 px for e
    alone, together = tmp_path / "alone", tmp_path / "together"
    perturb = ["--perturb", "blur:1", "resize:0.5"]
    assert evaluate("--checkpoint", str(runs / "a"), "--data", str(data), *perturb, "--out", str(alone)) == 0
    assert evaluate("--checkpoint", str(runs / "a"), str(runs / "e"), "--data", str(data), *perturb,
                    "--out", str(together)) == 0
    for perturbation in ("none", "blur:1", "resize:0.5"):
        assert abs(cell(alone, "a", perturbation)["auc"] - cell(together, "a", perturbation)["auc"]) <= 1e-3
    a_alone = pd.read_parquet(alone / "scores.parquet")
    a_together = pd.read_parquet(together / "scores.parquet")
    assert np.array_equal(a_alone["a"].to_numpy(), a_together["a"].to_numpy())  # in fact the very same scores


# ---------------------------------------------------------------- one matrix per folder, and only its own folder


def test_a_second_matrix_into_a_locked_folder_is_refused_with_the_reason(runs: Path, tmp_path: Path, capsys) -> None:
    data = write_ffdi(tmp_path / "data", {"val": 8}, seed=5, size=32)
    out = tmp_path / "m"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path\n"
         "from engine.contract.matrixfolder import own_matrix_folder\n"
         f"with own_matrix_folder(Path({str(out)!r})):\n    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert evaluate("--checkpoint", str(runs / "a"), "--data", str(data), "--perturb", "none", "--out", str(out)) == 2
        err = capsys.readouterr().err
        assert "another matrix is writing this folder" in err and f"pid {holder.pid}" in err
        assert not (out / "matrix.csv").exists() and not (out / "cells").exists()
    finally:
        holder.communicate("")
    assert evaluate("--checkpoint", str(runs / "a"), "--data", str(data), "--perturb", "none", "--out", str(out)) == 0


def test_a_folder_the_tool_did_not_make_is_refused_and_left_alone(runs: Path, tmp_path: Path, capsys) -> None:
    data = write_ffdi(tmp_path / "data", {"val": 8}, seed=5, size=32)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "matrix.csv").write_text("my own table\n")
    assert evaluate("--checkpoint", str(runs / "a"), "--data", str(data), "--perturb", "none", "--out", str(mine)) == 2
    err = capsys.readouterr().err
    assert "was not made by ffdv evaluate" in err and "matrix.csv" in err
    assert sorted(p.name for p in mine.iterdir()) == ["matrix.csv"]
    assert (mine / "matrix.csv").read_text() == "my own table\n"


def test_a_second_matrix_never_deletes_what_it_did_not_write(runs: Path, tmp_path: Path) -> None:
    data = write_ffdi(tmp_path / "data", {"val": 8}, seed=5, size=32)
    out = tmp_path / "m"
    assert evaluate("--checkpoint", str(runs / "a"), "--data", str(data), "--perturb", "none", "--out", str(out)) == 0
    (out / "cells" / "mine.txt").write_text("keep me")
    (out / "cells" / "sub").mkdir()
    (out / "cells" / "sub" / "x.txt").write_text("and me")
    assert evaluate("--checkpoint", str(runs / "b"), "--data", str(data), "--perturb", "none", "--out", str(out)) == 0
    assert (out / "cells" / "mine.txt").read_text() == "keep me"
    assert (out / "cells" / "sub" / "x.txt").read_text() == "and me"
    assert set(table(out)["model"]) == {"b"}


# ---------------------------------------------------------------- soups


def test_a_soup_or_greedy_soup_across_input_sizes_is_refused_naming_its_members(runs: Path, tmp_path: Path,
                                                                              capsys) -> None:
    data = write_ffdi(tmp_path / "data", {"val": 8}, seed=5, size=32)
    for ensemble in ("soup", "greedy"):
        out = tmp_path / ensemble
        assert evaluate("--checkpoint", str(runs / "a"), str(runs / "e"), "--data", str(data), "--ensemble", ensemble,
                        "--out", str(out)) == 2
        err = capsys.readouterr().err
        assert "a takes 32 px" in err and "e takes 64 px" in err and "Traceback" not in err
        assert not out.exists()


def test_greedy_soup_reads_each_checkpoint_once_and_prints_the_tables_number(runs: Path, tmp_path: Path, capsys,
                                                                            monkeypatch) -> None:
    import safetensors.torch

    data = write_ffdi(tmp_path / "data", {"val": 12}, seed=6, size=32)
    c = make_checkpoint(tmp_path / "c", seed=2)
    reads = []
    real = safetensors.torch.load_file
    monkeypatch.setattr(safetensors.torch, "load_file", lambda path, *a, **k: reads.append(path) or real(path, *a, **k))
    out = tmp_path / "m"
    assert evaluate("--checkpoint", str(runs / "a"), str(runs / "b"), str(c), "--data", str(data),
                    "--ensemble", "greedy", "--out", str(out)) == 0
    assert len(reads) == 3, reads  # one read per checkpoint; soups average the weights already loaded
    printed = capsys.readouterr().out
    line = next(x for x in printed.splitlines() if x.startswith("greedy soup:"))
    assert f"(AUC {cell(out, 'greedy-soup')['auc']:.4f} on valset · none)" in line
    hashes = [c["weights_sha256"] for c in report(out)["settings"]["checkpoints"] if c["kind"] == "checkpoint"]
    assert len(set(hashes)) == 3 and all(len(h) == 64 for h in hashes)


def test_a_damaged_greedy_json_is_chosen_again_with_a_warning(runs: Path, tmp_path: Path, capsys) -> None:
    data = write_ffdi(tmp_path / "data", {"val": 8}, seed=5, size=32)
    out = tmp_path / "m"
    args = ["--checkpoint", str(runs / "a"), str(runs / "b"), "--data", str(data), "--ensemble", "greedy", "--out", str(out)]
    assert evaluate(*args) == 0
    expected = cell(out, "greedy-soup")["auc"]
    for damage in ("{not json", '{"key": 1, "ingredients": 5}', "[]"):
        (out / "cells" / "greedy.json").write_text(damage)
        capsys.readouterr()
        assert evaluate(*args) == 0
        assert cell(out, "greedy-soup")["auc"] == expected
    assert "greedy soup is chosen again" in capsys.readouterr().err


def test_predict_with_a_soup_of_two_says_soup_of_2(runs: Path, tmp_path: Path, capsys) -> None:
    data = write_ffdi(tmp_path / "data", {"test": 4}, seed=5, size=32)
    assert main(["predict", "--checkpoint", str(runs / "a"), str(runs / "b"), "--ensemble", "soup", "--data", str(data),
                 "--out", str(tmp_path / "s.csv"), *COMMON]) == 0
    assert "from soup of 2" in capsys.readouterr().out


# ---------------------------------------------------------------- one image never stops a matrix


def test_tiny_images_under_wide_blurs_and_crops_are_scored(runs: Path, tmp_path: Path) -> None:
    data = write_ffdi(tmp_path / "data", {"val": 8}, seed=7, size=32)
    Image.new("RGB", (1, 1), (200, 10, 10)).save(data / "valset" / "val00000.jpg")
    out = tmp_path / "m"
    assert evaluate("--checkpoint", str(runs / "a"), "--data", str(data), "--perturb", "standard", "blur:20",
                    "crop:0.01+blur:1", "--out", str(out)) == 0
    t = table(out)
    assert len(t) == 13 and (t["unreadable"] == 0).all() and t["auc"].notna().all()


def test_an_image_whose_perturbation_fails_is_unreadable_in_that_cell_only(runs: Path, tmp_path: Path, capsys,
                                                                           monkeypatch) -> None:
    import engine.matrix

    data = write_ffdi(tmp_path / "data", {"val": 8}, seed=7, size=32)
    real = engine.matrix.perturb_image

    def fails_on_the_third(perturbation, image, seed):
        if seed % 8 == 2:
            raise RuntimeError("Padding size should be less than the corresponding input dimension")
        return real(perturbation, image, seed)

    monkeypatch.setattr(engine.matrix, "perturbation_seed", lambda seed, perturbation, index: index)
    monkeypatch.setattr(engine.matrix, "perturb_image", fails_on_the_third)
    out = tmp_path / "m"
    assert evaluate("--checkpoint", str(runs / "a"), "--data", str(data), "--perturb", "blur:1", "--out", str(out)) == 0
    assert cell(out, "a", "blur:1")["unreadable"] == 1 and cell(out, "a", "blur:1")["scored"] == 7
    assert cell(out, "a")["unreadable"] == 0
    scores = pd.read_parquet(out / "scores.parquet")
    reason = scores[(scores["perturbation"] == "blur:1") & (scores["unreadable"] != "")]["unreadable"].tolist()
    assert len(reason) == 1 and "blur:1 failed on this image" in reason[0]
    assert "warning: 1 images of valset could not be perturbed by blur:1" in capsys.readouterr().err


# ---------------------------------------------------------------- specs


@pytest.mark.parametrize("spec", ["jpeg:inf", "jpeg:nan", "jpeg:-inf", "blur:inf", "resize:nan"])
def test_a_non_finite_value_is_a_clear_error(runs: Path, tmp_path: Path, capsys, spec: str) -> None:
    assert evaluate("--checkpoint", str(runs / "a"), "--data", str(tmp_path), "--perturb", spec,
                    "--out", str(tmp_path / "m")) == 2
    err = capsys.readouterr().err
    assert "out of range" in err and "Traceback" not in err


def test_a_suite_file_that_names_itself_or_a_cycle_is_a_clear_error(tmp_path: Path) -> None:
    from engine.contract.perturbspec import check_spec

    (tmp_path / "self.toml").write_text(f'perturbations = ["jpeg:60", "{tmp_path / "self.toml"}"]\n')
    (tmp_path / "a.toml").write_text(f'perturbations = ["{tmp_path / "b.toml"}"]\n')
    (tmp_path / "b.toml").write_text(f'perturbations = ["blur:1", "{tmp_path / "a.toml"}"]\n')
    for name in ("self.toml", "a.toml"):
        message = check_spec(str(tmp_path / name))
        assert message is not None and "names itself" in message
    (tmp_path / "deep.toml").write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    message = check_spec(str(tmp_path / "deep.toml"))
    assert message is not None and "not a readable TOML file" in message


def test_near_equal_values_are_one_row_not_two_that_print_alike() -> None:
    from engine.contract.perturbspec import parse_suite

    assert [p.name for p in parse_suite(["blur:1", "blur:1.0000001", "jpeg:75"])] == ["none", "blur:1", "jpeg:75"]


def test_a_30_step_chain_has_a_bounded_cell_file_name(runs: Path, tmp_path: Path) -> None:
    data = write_ffdi(tmp_path / "data", {"val": 4}, seed=5, size=32)
    chain = "+".join(["resize:0.912345"] * 30)
    out = tmp_path / "m"
    assert evaluate("--checkpoint", str(runs / "a"), "--data", str(data), "--perturb", chain, "--out", str(out)) == 0
    assert cell(out, "a", chain)["auc"] is not None
    assert all(len(p.name.encode()) <= 100 for p in (out / "cells").rglob("*"))


# ---------------------------------------------------------------- ffdv split writes only a new folder


def listing(root: Path) -> dict[str, bytes | str]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() and not p.is_symlink() else "dir/link")
            for p in sorted(root.rglob("*"))}


def test_split_into_an_existing_dataset_is_refused_before_writing_anything(tmp_path: Path, capsys) -> None:
    source = write_ffdi(tmp_path / "source", {"train": 8, "val": 4, "test": 2}, seed=1, size=32)
    other = write_ffdi(tmp_path / "other", {"train": 6, "val": 3, "test": 2}, seed=2, size=32)
    before = listing(other)
    assert main(["split", str(source), "--out", str(other), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "exists and is not empty" in err and "nothing was written" in err
    assert listing(other) == before


def split_of_odd_names(tmp_path: Path, name: str) -> Path:
    root = tmp_path / "folders"
    for split in ("train", "val"):
        for cls in ("real", "fake"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (16, 16), (i * 70, 30 if cls == "real" else 200, 0)).save(folder / f"{i}.png")
    Image.new("RGB", (16, 16), (9, 9, 9)).save(root / "train" / "fake" / name)
    return root


@pytest.mark.parametrize("name", ["new\nline.png", "esc\x1b[31m.png"])
def test_split_of_names_with_control_characters_is_refused_naming_them(tmp_path: Path, capsys, name: str) -> None:
    root = split_of_odd_names(tmp_path, name)
    out = tmp_path / "out"
    assert main(["split", str(root), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "control characters" in err and "\x1b" not in err and not out.exists()


# ---------------------------------------------------------------- output


def test_piped_tables_never_split_an_auc_across_lines(runs: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    import re
    import shutil

    monkeypatch.setenv("COLUMNS", "80")
    data = write_ffdi(tmp_path / "data", {"val": 8}, seed=5, size=32)
    names = [f"run-{i}" for i in range(12)]  # at 80 columns Rich would fold each column to a few characters
    for name in names:
        shutil.copytree(runs / "a", tmp_path / name)
    assert evaluate("--checkpoint", *(str(tmp_path / n) for n in names), "--data", str(data), "--perturb", "jpeg:75",
                    "--out", str(tmp_path / "m")) == 0
    lines = capsys.readouterr().out.splitlines()
    for perturbation in ("none", "jpeg:75"):
        row = next(line for line in lines if line.startswith(perturbation + " "))
        assert len(re.findall(r"\b[01]\.\d{4}\b", row)) == 12, row


def test_evaluate_out_csv_never_writes_the_metrics_over_the_predictions(runs: Path, tmp_path: Path, capsys) -> None:
    data = write_ffdi(tmp_path / "data", {"val": 6}, seed=5, size=32)
    out = tmp_path / "x.csv"
    assert evaluate("--checkpoint", str(runs / "a"), "--data", str(data), "--out", str(out)) == 0
    predictions = pd.read_csv(out)
    assert "img_name" in predictions.columns and len(predictions) == 6
    metrics = json.loads((tmp_path / "x.json").read_text())
    assert "metrics" in metrics and metrics["predictions"] == str(out)
    assert f"metrics: {tmp_path / 'x.json'}" in capsys.readouterr().out
