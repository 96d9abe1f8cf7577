"""Per-source metrics of `ffdv evaluate` (a generator each, as benchmarks report) equal scikit-learn's per source."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_image
from sklearn.metrics import accuracy_score, roc_auc_score
from test_matrix import make_checkpoint

from engine.cli import main


@pytest.fixture(scope="module")
def forensynths_val(tmp_path_factory) -> Path:
    """<generator>/<category>/{0_real,1_fake}: three generators, 8 images each."""
    root = tmp_path_factory.mktemp("fs") / "val"
    rng = np.random.default_rng(3)
    for gen in ("biggan", "progan", "stylegan"):
        for cat in ("car", "cat"):
            for i in range(4):
                target = i % 2
                folder = root / gen / cat / ("1_fake" if target else "0_real")
                folder.mkdir(parents=True, exist_ok=True)
                synthetic_image(rng, target, 40).save(folder / f"{i}.png")
    return root


def test_evaluate_reports_each_source_as_sklearn_does(forensynths_val: Path, tmp_path: Path, capsys,
                                                      monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the per-source table, unwrapped
    run = make_checkpoint(tmp_path / "run", seed=1)
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--checkpoint", str(run), "--data", str(forensynths_val), "--out", str(out),
                 "--workers", "0", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    frame = pd.read_csv(report["predictions"])
    assert sorted(report["by_source"]) == ["biggan", "progan", "stylegan"]
    for source, group in frame.groupby("source"):
        mine = report["by_source"][source]
        assert mine["count"] == len(group) == 8
        assert mine["auc"] == pytest.approx(roc_auc_score(group["target"], group["score"]), abs=1e-5)
        assert mine["accuracy"] == pytest.approx(accuracy_score(group["target"], group["score"] > 0.5), abs=1e-6)
    aucs = [report["by_source"][s]["auc"] for s in report["by_source"]]
    assert report["mean_over_sources"]["auc"] == pytest.approx(np.mean(aucs), abs=1e-6)
    assert "per source" in printed and "stylegan" in printed and "mean" in printed
    assert set(frame["category"]) == {"car", "cat"}


def test_json_result_carries_the_sources(forensynths_val: Path, tmp_path: Path, capsys) -> None:
    run = make_checkpoint(tmp_path / "run", seed=2)
    assert main(["evaluate", "--checkpoint", str(run), "--data", str(forensynths_val), "--out",
                 str(tmp_path / "e.json"), "--workers", "0", "--device", "cpu", "--progress", "json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["kind"] == "evaluation" and set(result["by_source"]) == {"biggan", "progan", "stylegan"}


def test_the_matrix_reports_each_source_of_each_model(forensynths_val: Path, tmp_path: Path, capsys,
                                                     monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    runs = [make_checkpoint(tmp_path / f"run{seed}", seed=seed) for seed in (4, 5)]
    out = tmp_path / "m"
    assert main(["evaluate", "--checkpoint", *map(str, runs), "--data", str(forensynths_val), "--perturb", "jpeg:70",
                 "--out", str(out), "--workers", "0", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    by_source = pd.read_csv(out / "by_source.csv")
    scores = pd.read_parquet(out / "scores.parquet")
    assert (out / "matrix.csv").is_file()  # the whole, beside the sources
    for (model, perturbation), part in by_source.groupby(["model", "perturbation"]):
        cell = scores[scores["perturbation"] == perturbation].reset_index(drop=True)
        cell["source"] = cell["img_name"].str.split("/").str[0]
        for row in part[part["source"] != "mean"].itertuples():
            group = cell[cell["source"] == row.source]
            assert row.auc == pytest.approx(roc_auc_score(group["target"], group[model]), abs=1e-5)
        mean = part[part["source"] == "mean"]["auc"].iloc[0]
        assert mean == pytest.approx(part[part["source"] != "mean"]["auc"].mean(), abs=1e-5)
    assert set(by_source["source"]) == {"biggan", "progan", "stylegan", "mean"}
    assert set(by_source["perturbation"]) == {"none", "jpeg:70"} and by_source["model"].nunique() == 2
    assert "per source" in printed and "stylegan" in printed
