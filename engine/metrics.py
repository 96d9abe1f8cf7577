"""Detection metrics with torchmetrics: ROC AUC first, then what a competition or a reviewer asks.

Scores are the probability of *fake* (class 1). Metrics that a set of labels cannot
define (AUC when only one class is present, say) are None, never a made-up 0 or 0.5.
Under several processes, the (index, score, target) triples are gathered with
torchmetrics' CatMetric and de-duplicated by index, because DistributedSampler pads
the last batch with repeats: every image counts exactly once.
"""

from __future__ import annotations

import warnings

import torch
import torchmetrics.functional.classification as F
from torchmetrics import CatMetric

from engine.contract.protocol import METRIC_LABELS

TPR_AT_FPR = 1e-3
ECE_BINS = 15  # expected calibration error: equal-width bins of the score, as torchmetrics and most papers use


def _value(tensor: torch.Tensor) -> float:
    return round(float(tensor.detach().cpu()), 6)  # computed in float32: more digits would be noise


def detection_metrics(scores: torch.Tensor, targets: torch.Tensor, threshold: float = 0.5) -> dict:
    """Every metric of one validation. ``scores`` in [0, 1], ``targets`` 0/1."""
    scores = scores.detach().float().cpu()
    targets = targets.detach().long().cpu()
    n = int(targets.numel())
    positives = int(targets.sum()) if n else 0
    both_classes = 0 < positives < n
    out: dict = {"count": n, "positives": positives, "threshold": threshold}
    if n == 0:
        return {**out, **{k: None for k in METRIC_LABELS if k != "loss"}, "confusion": [[0, 0], [0, 0]]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics warns on one-class inputs; we report None instead
        out["auc"] = _value(F.binary_auroc(scores, targets)) if both_classes else None
        out["ap"] = _value(F.binary_average_precision(scores, targets)) if positives else None
        out["accuracy"] = _value(F.binary_accuracy(scores, targets, threshold=threshold))
        out["precision"] = _value(F.binary_precision(scores, targets, threshold=threshold))
        out["recall"] = _value(F.binary_recall(scores, targets, threshold=threshold)) if positives else None
        out["f1"] = _value(F.binary_f1_score(scores, targets, threshold=threshold))
        out["eer"] = _value(F.binary_eer(scores, targets)) if both_classes else None
        if both_classes:
            tpr, _ = F.binary_sensitivity_at_specificity(scores, targets, min_specificity=1.0 - TPR_AT_FPR)
            out["tpr_at_fpr_1e-3"] = _value(tpr)
        else:
            out["tpr_at_fpr_1e-3"] = None
        out["ece"] = _value(F.binary_calibration_error(scores, targets, n_bins=ECE_BINS, norm="l1"))
        cm = F.binary_confusion_matrix(scores, targets, threshold=threshold)
    out["confusion"] = [[int(cm[0, 0]), int(cm[0, 1])], [int(cm[1, 0]), int(cm[1, 1])]]  # [[tn, fp], [fn, tp]]
    return out


def _as_tensor(value) -> torch.Tensor:
    """CatMetric's result: a tensor, or an empty list when nothing was added anywhere."""
    return value.reshape(-1).cpu() if isinstance(value, torch.Tensor) else torch.empty(0)


class PredictionCollector:
    """Accumulates per-image (index, score, target, loss) over a validation, across processes."""

    def __init__(self, device: torch.device | str = "cpu"):
        self.parts = {name: CatMetric(nan_strategy="disable").to(device) for name in ("index", "score", "target", "loss")}
        for metric in self.parts.values():  # a rank that sees no image still joins the gather in compute()
            metric.update(torch.empty(0, device=device))

    def update(self, indices: torch.Tensor, scores: torch.Tensor, targets: torch.Tensor, losses: torch.Tensor) -> None:
        for name, value in (("index", indices), ("score", scores), ("target", targets), ("loss", losses)):
            self.parts[name].update(value.detach().float())

    def compute(self) -> dict[str, torch.Tensor]:
        """Synchronised across ranks, each index once, in index order."""
        values = {name: _as_tensor(metric.compute()) for name, metric in self.parts.items()}
        index = values["index"].long()
        order = torch.argsort(index, stable=True)
        index = index[order]
        keep = torch.ones_like(index, dtype=torch.bool)
        keep[1:] = index[1:] != index[:-1]
        picked = order[keep]
        return {
            "index": index[keep],
            "score": values["score"][picked],
            "target": values["target"][picked].long(),
            "loss": values["loss"][picked],
        }

    def reset(self) -> None:
        for metric in self.parts.values():
            metric.reset()
            metric.update(torch.empty(0, device=metric.device))
