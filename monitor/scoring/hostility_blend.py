"""Hostility's head widened to ToxiChat's Reddit threads and the CAT Wikipedia posts, without fine-tuning.

The fine-tuned head reads Reddit incivility, GoEmotions and Davidson's tweets. Fine-tuning on ToxiChat and CAT
as well raised the identity-term bias up to sevenfold and lost incivility and GoEmotions (the model card), so
after training two probes are fitted on the finished network's pooled features instead, both in the complement
of its identity-term directions (`monitor.scoring.identity`):
- `all_sets`: a logistic regression over every hostility set's train split, each set weighing as SET_WEIGHTS
  says (CAT's label is soft: the crowd's verdict and Perspective's score averaged);
- `perspective`: a ridge regression of the logit of Perspective's published TOXICITY on CAT's train posts. It
  ranks the many mild posts as Perspective does, which a logistic fit on soft labels hardly attends to.
The shipped head is tuned / sd + a * perspective / sd + c * all_sets / sd (each head's logits divided by their
spread on validation), with (a, c) the grid point of the best mean validation figure (ROC-AUC on every
hostility set, Spearman with Perspective's score on CAT) among those that keep incivility and GoEmotions within
TOLERANCE of the fine-tuned head on validation. A sum of linear heads is one linear head: the artefact, its
runtime and its speed are those of the fine-tuned network. Calibration is then refitted as `train` fits it (Platt
scaling and the F1-best threshold on the run's `calibrate_on` sets), on those sets' whole validation splits.
"""

from __future__ import annotations

from itertools import product
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression, Ridge

from monitor.scoring import identity
from monitor.scoring.evaluate import roc_auc, spearman
from monitor.scoring.network import DimensionCard

if TYPE_CHECKING:
    from collections.abc import Sequence

    from monitor.scoring.probes import Features

# per-set weight in the logistic fit (each set's rows sum to it). CAT 2 against 1: a higher mean validation
# figure. GoEmotions 3 against 1: the same mean (within 0.0004) and 0.03 more GoEmotions validation ROC-AUC, its
# hostility being the mildest and the most easily lost.
SET_WEIGHTS = {"incivility": 1.0, "goemotions_hostile": 3.0, "davidson": 0.5, "toxichat": 1.0, "cat": 2.0}
SETS = (*SET_WEIGHTS, "cat_perspective")
KEPT = ("incivility", "goemotions_hostile")  # the fine-tuned head's own Reddit sets: no loss beyond TOLERANCE
TOLERANCE = 0.01  # validation ROC-AUC; a 95% interval on either test split is wider than +-0.01
C = 0.03  # the logistic fit's regularisation: the lowest of 0.03-1 tried, the best mean validation figure of them
RIDGE_ALPHA = 10.0  # the ridge fit's: 1, 10 and 100 ranked CAT within 0.003 Spearman of one another
PERSPECTIVE_RANGE = (1e-3, 1 - 1e-3)  # clipped before the logit: Perspective publishes 0 and 1 too
GRID = (np.arange(0, 1.51, 0.125), (0.0, 0.5, 1.0))  # a: the Perspective probe's weight, c: all_sets'


def fit(
    features: Features,
    project: np.ndarray,
    weight: np.ndarray,
    bias: float,
    tuned: DimensionCard,
    calibrate_on: Sequence[str],
) -> tuple[np.ndarray, float, DimensionCard, dict[str, object]]:
    """The widened head (weight, bias), its calibration on the `calibrate_on` sets (the training run's) and what
    the card records of it; `project` removes the identity-term directions (`identity.complement`)."""
    from monitor.scoring.train import f1_threshold, platt, weighted_sets

    heads = {
        "tuned": (weight, bias),
        "perspective": _ridge(project, *features.split("cat_perspective", "train")),
        "all_sets": _logistic(project, [(features.split(t, "train"), w) for t, w in SET_WEIGHTS.items()]),
    }
    val = {t: features.split(t, "val") for t in SETS}
    pooled = np.concatenate([x for x, _ in val.values()])
    spread = {name: _spread(pooled, head) for name, head in heads.items()}
    blends = [{"tuned": 1.0, "perspective": a, "all_sets": c} for a, c in product(*GRID)]  # the first: tuned alone
    figures = [_figures(val, _combine(heads, spread, blend)) for blend in blends]
    best = choose(figures)
    w, b = _combine(heads, spread, blends[best])
    z, y, sample_weight = weighted_sets(calibrate_on, {t: val[t][0] @ w + b for t in calibrate_on}, val)
    scale, shift = platt(z, y, sample_weight)
    threshold = f1_threshold(expit(scale * z + shift), y, sample_weight)
    trained_on = [*tuned.trained_on, *(t for t in SET_WEIGHTS if t not in tuned.trained_on)]
    card = DimensionCard(round(scale, 6), round(shift, 6), round(threshold, 6), trained_on)
    record = {
        "weights": {name: round(float(v / spread[name]), 6) for name, v in blends[best].items()},
        "set_weights": SET_WEIGHTS,
        "C": C,
        "ridge_alpha": RIDGE_ALPHA,
        "identity_directions": identity.DIRECTIONS,
        "tolerance": TOLERANCE,
        "val_tuned": _rounded(figures[0]),
        "val_chosen": _rounded(figures[best]),
    }
    return w, b, card, record


def choose(figures: list[dict[str, float]]) -> int:
    """The blend with the best mean validation figure among those that keep every KEPT set within TOLERANCE of the
    first blend, the fine-tuned head alone."""
    floor = {t: figures[0][t] - TOLERANCE for t in KEPT}
    allowed = [i for i, f in enumerate(figures) if i == 0 or all(f[t] >= floor[t] for t in KEPT)]
    return max(allowed, key=lambda i: np.nanmean(list(figures[i].values())))


def _spread(x: np.ndarray, head: tuple[np.ndarray, float]) -> float:
    """The spread of a head's logits; 1 for a head that does not vary, whose weight would otherwise blow up."""
    spread = float(np.std(x @ head[0] + head[1]))
    return spread if spread > 1e-9 else 1.0


def _ridge(project: np.ndarray, x: np.ndarray, toxicity: np.ndarray) -> tuple[np.ndarray, float]:
    model = Ridge(alpha=RIDGE_ALPHA).fit(x @ project, logit(np.clip(toxicity, *PERSPECTIVE_RANGE)))
    return project @ model.coef_, float(model.intercept_)


def _logistic(project: np.ndarray, sets: list[tuple[tuple[np.ndarray, np.ndarray], float]]) -> tuple[np.ndarray, float]:
    """Soft labels as two weighted rows, positive with weight w * y and negative with w * (1 - y)."""
    xs, ys, ws = [], [], []
    for (x, y), set_weight in sets:
        w = np.full(len(y), set_weight / len(y))
        xs += [x, x]
        ys += [np.ones(len(y)), np.zeros(len(y))]
        ws += [w * y, w * (1 - y)]
    w = np.concatenate(ws)
    model = LogisticRegression(C=C, max_iter=5000)
    model.fit(np.concatenate(xs) @ project, np.concatenate(ys), sample_weight=w * len(w) / 2 / w.sum())
    return project @ model.coef_[0], float(model.intercept_[0])


def _combine(
    heads: dict[str, tuple[np.ndarray, float]], spread: dict[str, float], blend: dict[str, float]
) -> tuple[np.ndarray, float]:
    weight = sum(blend[n] / spread[n] * heads[n][0] for n in heads)
    return np.asarray(weight), float(sum(blend[n] / spread[n] * heads[n][1] for n in heads))


def _figures(val: dict[str, tuple[np.ndarray, np.ndarray]], head: tuple[np.ndarray, float]) -> dict[str, float]:
    """ROC-AUC on each hostility set's validation rows (CAT: the crowd's verdict), Spearman with Perspective."""
    out = {}
    for task, (x, y) in val.items():
        z = x @ head[0] + head[1]
        out[task] = spearman(y, z) if task == "cat_perspective" else roc_auc(y > 0.5, z)
    return out


def _rounded(figures: dict[str, float]) -> dict[str, float]:
    return {t: round(v, 4) for t, v in figures.items()}
