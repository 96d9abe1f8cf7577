"""The detection metrics against an independent implementation (scikit-learn + numpy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn import metrics as skm

from engine.metrics import PredictionCollector, detection_metrics


def reference(scores: np.ndarray, targets: np.ndarray, threshold: float = 0.5) -> dict:
    pred = (scores > threshold).astype(int)  # fake when the score is above the threshold, as argmax does at 0.5
    fpr, tpr, _ = skm.roc_curve(targets, scores, drop_intermediate=False)
    fnr = 1 - tpr
    i = int(np.argmin(np.abs(fpr - fnr)))
    return {
        "auc": skm.roc_auc_score(targets, scores),
        "ap": skm.average_precision_score(targets, scores),
        "accuracy": skm.accuracy_score(targets, pred),
        "precision": skm.precision_score(targets, pred, zero_division=0),
        "recall": skm.recall_score(targets, pred, zero_division=0),
        "f1": skm.f1_score(targets, pred, zero_division=0),
        "eer": (fpr[i] + fnr[i]) / 2,
        "tpr_at_fpr_1e-3": float(tpr[fpr <= 1e-3].max()),
        "confusion": skm.confusion_matrix(targets, pred, labels=[0, 1]).tolist(),
    }


def check_against_reference(scores: np.ndarray, targets: np.ndarray, threshold: float = 0.5) -> None:
    ours = detection_metrics(torch.tensor(scores, dtype=torch.float32), torch.tensor(targets), threshold)
    ref = reference(scores.astype(np.float32).astype(np.float64), targets, threshold)
    for key, value in ref.items():
        if key == "confusion":
            assert ours[key] == value
        else:
            assert ours[key] == pytest.approx(value, abs=1e-5), key
    assert ours["count"] == len(targets)
    assert ours["positives"] == int(targets.sum())


@pytest.mark.parametrize("seed", range(5))
def test_random_scores_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 3000))
    targets = rng.integers(0, 2, n)
    scores = np.clip(rng.normal(0.35 + 0.3 * targets, 0.25), 0, 1)
    check_against_reference(scores, targets)


def test_threshold_changes_the_thresholded_metrics() -> None:
    rng = np.random.default_rng(7)
    targets = rng.integers(0, 2, 500)
    scores = rng.random(500)
    check_against_reference(scores, targets, threshold=0.8)
    low = detection_metrics(torch.tensor(scores), torch.tensor(targets), 0.1)
    high = detection_metrics(torch.tensor(scores), torch.tensor(targets), 0.9)
    assert low["recall"] > high["recall"]
    assert low["auc"] == high["auc"]


def test_ties_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    targets = rng.integers(0, 2, 400)
    scores = rng.choice([0.1, 0.3, 0.5, 0.7, 0.9], size=400)  # heavy ties, including at the threshold
    check_against_reference(scores, targets)


def test_all_scores_equal_gives_auc_half() -> None:
    targets = np.array([0, 1] * 50)
    scores = np.full(100, 0.5)
    out = detection_metrics(torch.tensor(scores), torch.tensor(targets))
    assert out["auc"] == pytest.approx(0.5)
    assert out["eer"] == pytest.approx(0.5)
    check_against_reference(scores, targets)


def test_perfect_separation() -> None:
    targets = np.array([0] * 30 + [1] * 20)
    scores = np.concatenate([np.linspace(0.0, 0.4, 30), np.linspace(0.6, 1.0, 20)])
    out = detection_metrics(torch.tensor(scores), torch.tensor(targets))
    assert out["auc"] == 1.0 and out["ap"] == 1.0 and out["accuracy"] == 1.0
    assert out["eer"] == 0.0 and out["tpr_at_fpr_1e-3"] == 1.0
    assert out["confusion"] == [[30, 0], [0, 20]]
    check_against_reference(scores, targets)


def test_perfectly_wrong() -> None:
    targets = np.array([1] * 10 + [0] * 10)
    scores = np.concatenate([np.full(10, 0.1), np.full(10, 0.9)])
    out = detection_metrics(torch.tensor(scores), torch.tensor(targets))
    assert out["auc"] == 0.0 and out["accuracy"] == 0.0 and out["eer"] == 1.0
    check_against_reference(scores, targets)


@pytest.mark.parametrize("label", [0, 1])
def test_one_class_leaves_ranking_metrics_undefined(label: int) -> None:
    targets = np.full(40, label)
    scores = np.random.default_rng(1).random(40)
    out = detection_metrics(torch.tensor(scores), torch.tensor(targets))
    assert out["auc"] is None and out["eer"] is None and out["tpr_at_fpr_1e-3"] is None
    pred = (scores > 0.5).astype(int)
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(targets, pred))
    if label == 0:
        assert out["ap"] is None and out["recall"] is None
    else:
        assert out["ap"] == pytest.approx(1.0)
        assert out["recall"] == pytest.approx(skm.recall_score(targets, pred))


def test_empty_input() -> None:
    out = detection_metrics(torch.empty(0), torch.empty(0, dtype=torch.long))
    assert out["count"] == 0 and out["auc"] is None and out["confusion"] == [[0, 0], [0, 0]]


def test_eer_agrees_with_the_interpolated_definition() -> None:
    rng = np.random.default_rng(11)
    targets = rng.integers(0, 2, 5000)
    scores = np.clip(rng.normal(0.4 + 0.2 * targets, 0.2), 0, 1)
    fpr, tpr, _ = skm.roc_curve(targets, scores)
    interpolated = brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)
    out = detection_metrics(torch.tensor(scores), torch.tensor(targets))
    assert out["eer"] == pytest.approx(interpolated, abs=2e-3)


def test_tpr_at_low_fpr_counts_only_thresholds_within_the_fpr() -> None:
    # 2000 reals: FPR <= 1e-3 allows at most 2 reals above the threshold.
    rng = np.random.default_rng(5)
    reals = rng.random(2000) * 0.9
    reals[:3] = [0.99, 0.98, 0.97]  # three very confident false positives
    fakes = np.linspace(0.5, 0.985, 100)
    scores = np.concatenate([reals, fakes])
    targets = np.concatenate([np.zeros(2000, int), np.ones(100, int)])
    out = detection_metrics(torch.tensor(scores), torch.tensor(targets))
    ref = reference(scores, targets)["tpr_at_fpr_1e-3"]
    assert out["tpr_at_fpr_1e-3"] == pytest.approx(ref)
    # The threshold may pass the 0.98 and 0.99 reals (2 / 2000 = 1e-3) but not the 0.97 one.
    assert out["tpr_at_fpr_1e-3"] == pytest.approx((fakes > 0.97).mean())


def test_collector_keeps_each_index_once_in_order() -> None:
    collector = PredictionCollector()
    collector.update(torch.tensor([4, 0, 2]), torch.tensor([0.4, 0.0, 0.2]), torch.tensor([1, 0, 1]), torch.zeros(3))
    # A DistributedSampler pads the last batch by repeating the first indices.
    collector.update(torch.tensor([3, 1, 4, 0]), torch.tensor([0.3, 0.1, 0.4, 0.0]), torch.tensor([0, 1, 1, 0]),
                     torch.ones(4))
    out = collector.compute()
    assert out["index"].tolist() == [0, 1, 2, 3, 4]
    assert out["score"].tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert out["target"].tolist() == [0, 1, 1, 0, 1]


def test_collector_empty() -> None:
    assert PredictionCollector().compute()["index"].numel() == 0
