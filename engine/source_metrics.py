"""Metrics per source (generator, sub-folder, an extra label column) beside the whole, as benchmarks report them.

ForenSynths, GenImage and DeepfakeBench give one number per generator and their mean; a
single AUC over a mixed split hides the generator a detector misses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
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


def matrix_by_source(plan, cells) -> pd.DataFrame:
    """The matrix's rows per source: model, dataset, perturbation, source and SOURCE_METRICS, for every dataset whose
    layout names sources (none: an empty frame). ``cells``: (DataSource, Perturbation, parquet path) of each cell."""
    from engine.matrix import add_ensembles, row_kinds

    records = []
    for source, perturbation, path in cells:
        sources = source.split.sources
        if sources is None:
            continue
        frame = add_ensembles(pd.read_parquet(path), plan)
        names = np.asarray(sources, dtype=object)
        target = frame["target"].to_numpy()
        for key in row_kinds(plan):
            score = frame[key].to_numpy(dtype=np.float64)
            readable = ~np.isnan(score)
            by_source = metrics_by_source(score[readable], target[readable], names[readable])
            for name, metrics in [*by_source.items(), ("mean", mean_over_sources(by_source))]:
                records.append({"model": key, "dataset": source.key, "perturbation": perturbation.name,
                                "source": name, **{m: metrics.get(m) for m in ("count", *SOURCE_METRICS)}})
    return pd.DataFrame.from_records(records, columns=["model", "dataset", "perturbation", "source", "count",
                                                       *SOURCE_METRICS])
