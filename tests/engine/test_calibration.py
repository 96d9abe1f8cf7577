"""Calibration: ECE as an independent computation, a temperature that lowers the NLL, thresholds that keep their FPR,
and `ffdv calibrate` / `ffdv predict --calibrated --threshold fpr:X` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import write_ffdi
from test_matrix import make_checkpoint

from engine.calibration import apply_temperature, calibrate, expected_calibration_error, nll
from engine.cli import main
from engine.contract.errors import FfdvError
from engine.contract.operating import resolve_threshold
from engine.contract.sidecar import read_sidecar
from engine.metrics import detection_metrics


def independent_ece(p: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Equal-width bins over [0, 1]: sum over bins of |mean score - share of fakes| weighted by the bin's size."""
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = index == b
        if inside.any():
            total += inside.mean() * abs(p[inside].mean() - y[inside].mean())
    return total


def overconfident(n: int = 4000, seed: int = 0, sharpness: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Scores of a calibrated model (y drawn from sigmoid(z)), then made overconfident (logits times ``sharpness``)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    return 1 / (1 + np.exp(-sharpness * z)), y


def test_ece_equals_an_independent_computation() -> None:
    p, y = overconfident()
    p = np.clip(np.round(p, 4) + 1e-5, 0.0, 0.99999)  # clear of the bin edges, inside [0, 1]
    assert expected_calibration_error(p, y) == pytest.approx(independent_ece(p, y), abs=1e-5)
    metrics = detection_metrics(torch.from_numpy(p), torch.from_numpy(y))
    assert metrics["ece"] == pytest.approx(independent_ece(p, y), abs=1e-5)


def test_temperature_scaling_lowers_the_nll_and_keeps_the_order() -> None:
    p, y = overconfident(sharpness=3.0)
    result = calibrate(p, y, "val")
    assert result["temperature"] == pytest.approx(3.0, rel=0.15)
    assert result["nll_after"] < result["nll_before"] and result["ece_after"] < result["ece_before"]
    q = apply_temperature(p, result["temperature"])
    assert nll(q, y) == pytest.approx(result["nll_after"], abs=1e-6)
    assert (np.diff(q[np.argsort(p)]) >= 0).all()  # the same order: the same AUC


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_fpr_at_each_stored_threshold_is_at_most_its_target(seed: int) -> None:
    p, y = overconfident(n=3000 + seed * 777, seed=seed)
    p = np.round(p, 3)  # ties at the thresholds
    result = calibrate(p, y, "val")
    q = apply_temperature(p, result["temperature"])
    for key, target in (("fpr:0.001", 1e-3), ("fpr:0.01", 1e-2), ("fpr:0.05", 5e-2)):
        point = result["thresholds"][key]
        assert ((p > point["raw"]) & (y == 0)).sum() / (y == 0).sum() <= target
        assert ((q > point["calibrated"]) & (y == 0)).sum() / (y == 0).sum() <= target
        assert point["fpr"] <= target
    balanced = result["thresholds"]["balanced"]
    best = max(((p > t)[y == 1].mean() + (p <= t)[y == 0].mean()) / 2 for t in np.unique(p))
    assert balanced["balanced_accuracy"] == pytest.approx(best, abs=1e-6)


def test_one_class_is_refused_with_the_reason() -> None:
    with pytest.raises(FfdvError, match="only reals"):
        calibrate(np.array([0.1, 0.4]), np.array([0, 0]), "val")


def test_threshold_specs() -> None:
    calibration = {"temperature": 2.0, "thresholds": {"fpr:0.01": {"raw": 0.9, "calibrated": 0.75}}}
    assert resolve_threshold("fpr:0.01", calibration, False, "c") == 0.9
    assert resolve_threshold("fpr:1e-2", calibration, True, "c") == 0.75
    assert resolve_threshold("0.3", None, False, "c") == 0.3
    with pytest.raises(FfdvError, match="it has: fpr:0.01"):
        resolve_threshold("fpr:0.5", calibration, False, "c")
    with pytest.raises(FfdvError, match="ffdv calibrate"):
        resolve_threshold("balanced", None, False, "c")


def test_calibrate_and_predict_end_to_end(tmp_path: Path, capsys) -> None:
    data = write_ffdi(tmp_path / "data", {"val": 24, "test": 8}, seed=4, size=40)
    run = make_checkpoint(tmp_path / "run", seed=3)
    common = ["--workers", "0", "--device", "cpu"]
    assert main(["predict", "--checkpoint", str(run), "--data", str(data), "--threshold", "fpr:0.01",
                 "--out", str(tmp_path / "x.csv"), *common]) == 2
    assert "ffdv calibrate" in capsys.readouterr().err
    assert main(["calibrate", "--checkpoint", str(run), "--data", str(data), "--progress", "json", *common]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["result"]
    stored = read_sidecar(run / "checkpoints" / "best.safetensors").calibration
    assert stored == result["calibration"] and "valset" in stored["split"]
    assert set(stored["thresholds"]) == {"fpr:0.001", "fpr:0.01", "fpr:0.05", "balanced"}
    plain, calibrated = tmp_path / "plain.csv", tmp_path / "cal.csv"
    assert main(["predict", "--checkpoint", str(run), "--data", str(data), "--out", str(plain), *common]) == 0
    assert main(["predict", "--checkpoint", str(run), "--data", str(data), "--out", str(calibrated), "--calibrated",
                 "--threshold", "fpr:0.05", *common]) == 0
    printed = capsys.readouterr().out
    assert "another split" in printed  # calibrated on val, predicting test
    submission = pd.read_csv(calibrated)
    assert list(submission.columns) == ["img_name", "y_pred"] and len(submission) == 8
    expected = apply_temperature(pd.read_csv(plain)["y_pred"].to_numpy(), stored["temperature"])
    assert submission["y_pred"].to_numpy() == pytest.approx(expected, abs=2e-6)
    decisions = pd.read_csv(calibrated.with_suffix(".decisions.csv"))
    threshold = stored["thresholds"]["fpr:0.05"]["calibrated"]
    assert list(decisions.columns) == ["img_name", "y_pred", "decision"]
    clear = (decisions["y_pred"] - threshold).abs() > 1e-6  # y_pred is rounded to 6 digits in the file
    assert (decisions["decision"] == (decisions["y_pred"] > threshold).astype(int))[clear].all()
    assert decisions["img_name"].tolist() == submission["img_name"].tolist()


@pytest.mark.parametrize("exact_one", [False, True])
def test_the_apps_reliability_bins_give_the_engines_ece(exact_one: bool) -> None:
    from engine.data.reliability import reliability
    from ffdv_tui.widgets.reliability import diagram

    p, y = overconfident(n=1500, seed=7)
    p = np.minimum(np.round(p, 3), 0.999)
    if exact_one:
        p[:10] = 1.0  # torchmetrics puts a score of exactly 1.0 in a bin of its own
    bins = reliability(p, y)
    assert bins.ece == pytest.approx(expected_calibration_error(p, y), abs=1e-5)
    assert bins.counts.sum() == len(p) and len(bins.counts) == 15 + exact_one
    assert f"ECE {bins.ece:.4f}" in diagram(p, y).plain


def test_the_checkpoints_screen_shows_the_calibration_and_its_split(tmp_path: Path) -> None:
    from pilot_helpers import plain

    from ffdv_tui.screens.checkpoints import calibration_text

    calibration = {"temperature": 2.5, "ece_before": 0.2, "ece_after": 0.03, "split": f"{tmp_path / 'other'} (val)",
                   "thresholds": {"fpr:0.01": {"raw": 0.97, "calibrated": 0.8}}}
    text = plain(calibration_text(calibration, str(tmp_path / "data")))
    assert "T 2.500" in text and "ECE 0.2000 → 0.0300" in text and "fpr:0.01 0.9700" in text
    assert "another split than this run's data" in text
    own = {**calibration, "split": f"{tmp_path / 'data' / 'valset'} (val)"}
    assert "another split" not in plain(calibration_text(own, str(tmp_path / "data")))


async def test_c_on_the_predictions_screen_steps_through_the_stored_thresholds(tmp_path: Path) -> None:
    from conftest import install_fixture_runs
    from pilot_helpers import make_app, pick_run, wait_until
    from textual.widgets import Input

    from ffdv_tui.screens.predictions import PredictionsScreen

    runs = install_fixture_runs(tmp_path / "runs")
    sidecar = runs / "finished" / "checkpoints" / "epoch-003.json"  # the best (the recorded runs have no best.json)
    data = json.loads(sidecar.read_text())
    data["calibration"] = {"temperature": 1.5, "split": "/data/valset (val)", "thresholds": {
        "fpr:0.01": {"raw": 0.91, "calibrated": 0.8}, "balanced": {"raw": 0.42, "calibrated": 0.45}}}
    sidecar.write_text(json.dumps(data))
    app = make_app(runs, images="none")
    async with app.run_test(size=(140, 44)) as pilot:
        await pick_run(pilot, app, "finished")
        await pilot.press("v")
        await wait_until(pilot, lambda: isinstance(app.screen, PredictionsScreen), 30, "the predictions screen")
        threshold = app.screen.query_one("#threshold", Input)
        await pilot.press("c")
        await wait_until(pilot, lambda: threshold.value == "0.910000", 30, "the FPR 1e-2 threshold")
        await pilot.press("c")
        await wait_until(pilot, lambda: threshold.value == "0.420000", 30, "the balanced threshold")
