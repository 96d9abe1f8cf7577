"""Metrics per source (generator, sub-folder, an extra label column) beside the whole, as benchmarks report them.

ForenSynths, GenImage and DeepfakeBench give one number per generator and their mean; a
single AUC over a mixed split hides the generator a detector misses.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.metrics import detection_metrics

SOURCE_METRICS = ("auc", "accuracy", "ap", "eer")  # what each source reports; the mean is taken of these


def metrics_by_source(scores: np.ndarray, targets: np.ndarray, sources) -> dict[str, dict]:
    """Every metric of each source's images, sources in sorted order."""
    sources = np.asarray(sources, dtype=object)
    out: dict[str, dict] = {}
    for source in sorted(set(sources.tolist())):
        mask = sources == source
        metrics = detection_metrics(torch.from_numpy(np.asarray(scores, dtype=np.float64)[mask]),
                                    torch.from_numpy(np.asarray(targets, dtype=np.int64)[mask]))
        out[str(source)] = {k: metrics[k] for k in ("count", "positives", *SOURCE_METRICS)}
    return out


def mean_over_sources(by_source: dict[str, dict]) -> dict[str, float | None]:
    """The unweighted mean over sources of each metric (a source where it is undefined left out)."""
    mean: dict[str, float | None] = {}
    for key in SOURCE_METRICS:
        values = [m[key] for m in by_source.values() if m.get(key) is not None]
        mean[key] = round(float(np.mean(values)), 6) if values else None
    return mean
