"""Combining checkpoints: mean and rank ensembles of their scores, weight averages ("soups"), and TTA views.

A soup averages the weights of checkpoints of one architecture (Wortsman et al., 2022)
and is then judged like any checkpoint; the greedy soup adds checkpoints, best first,
only while the validation AUC improves. Scores of several models are combined per
image; the rank ensemble uses ranks within one dataset x perturbation cell, so models
whose probabilities live on different scales count equally.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from engine.contract.errors import FfdvError

ENSEMBLES = ("mean", "rank", "soup", "greedy")
TTA_MODES = ("flip", "scales")
TTA_SCALES = (0.875, 1.0, 1.125)
SCORE_FLOOR = 1e-7  # -log(0) is infinite: a loss of an ensemble score is capped there


class SoupError(FfdvError):
    pass


def parse_choices(text: str | None, allowed: tuple[str, ...], flag: str) -> list[str]:
    """``mean,rank`` -> ["mean", "rank"]; an unknown word is named with the accepted ones."""
    if not text:
        return []
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    for word in words:
        if word not in allowed:
            raise FfdvError(f"{flag} {text!r}: unknown choice {word!r}; accepted: {', '.join(allowed)} (comma separated)")
    return list(dict.fromkeys(words))


def check_soupable(names: list[str], model_names: list[str], states: list[dict[str, torch.Tensor]]) -> None:
    """Weights average only within one architecture: the same timm model, the same tensors."""
    if len(set(model_names)) > 1:
        listed = ", ".join(f"{n} is {m}" for n, m in zip(names, model_names))
        raise SoupError(f"a soup averages weights of one architecture, but {listed}. Fix: pass only checkpoints of "
                        "one model to --ensemble soup/greedy (mean and rank work across architectures)")
    first = states[0]
    for name, state in zip(names[1:], states[1:]):
        if state.keys() != first.keys() or any(state[k].shape != first[k].shape for k in first):
            raise SoupError(f"{name}: its tensors differ from {names[0]}'s although both are {model_names[0]}. "
                            "Fix: soup only checkpoints of one training setup")


def average_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The uniform average of floating tensors; counters (BatchNorm's num_batches_tracked) from the first."""
    out = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            total = torch.zeros_like(first, dtype=torch.float64)
            for state in states:
                total += state[key].to(torch.float64)
            out[key] = (total / len(states)).to(first.dtype)
        else:
            out[key] = first.clone()
    return out


def mean_ensemble(columns: list[np.ndarray]) -> np.ndarray:
    return np.mean(np.stack(columns), axis=0) if len(columns) > 1 else np.asarray(columns[0], dtype=np.float64)


def rank_ensemble(columns: list[np.ndarray]) -> np.ndarray:
    """Mean of each model's percentile rank (ties share their average rank); NaN (unreadable) stays NaN."""
    ranks = [pd.Series(c).rank(pct=True, method="average").to_numpy() for c in columns]
    return np.mean(np.stack(ranks), axis=0)


def score_loss(score: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Cross-entropy of a probability of fake, for rows that have no logits (ensembles, TTA means)."""
    p = np.clip(score, SCORE_FLOOR, 1.0 - SCORE_FLOOR)
    return np.where(target == 1, -np.log(p), -np.log1p(-p)) * (target >= 0)


@dataclass(frozen=True)
class TTAView:
    flip: bool
    scale: float


def tta_views(modes: tuple[str, ...]) -> list[TTAView]:
    """The views whose probabilities are averaged: () is the plain model; flip and scales combine."""
    flips = (False, True) if "flip" in modes else (False,)
    scales = TTA_SCALES if "scales" in modes else (1.0,)
    return [TTAView(f, s) for f, s in itertools.product(flips, scales)]


def view_input(x: torch.Tensor, view: TTAView) -> torch.Tensor:
    if view.scale != 1.0:
        size = [max(8, round(d * view.scale)) for d in x.shape[-2:]]
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=view.scale < 1.0)
    return x.flip(-1) if view.flip else x
