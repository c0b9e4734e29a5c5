"""Continuity with Perspective API: civmon's score on Perspective's TOXICITY scale.

Researchers' series and moderators' thresholds ("above 0.8") were built on Perspective's TOXICITY. What is put on
that scale is the model's continuity logit, where it has one (hostility's readout's second output, trained on
Perspective's own scores: `monitor.scoring.hostility_blend`), else hostility. Hostility is held to GoEmotions'
hostile emotions, which Perspective does not count as toxic, so the continuity logit ranks comments far more as
Perspective does (the model card gives both Spearmans on held-out CAT posts). The mapping is isotonic regression of
Perspective's published score on the model's probability: monotone (a higher score never maps lower), linear between
its knots, clipped at the ends. It is fitted on the CAT posts of the train split only (task `cat_perspective`), so
the agreement measured on the test split is an honest one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import cohen_kappa_score

PERSPECTIVE_THRESHOLDS = (0.5, 0.7, 0.8, 0.9)  # the cut-offs Perspective's documentation and users work with


@dataclass(frozen=True)
class ToxicityMap:
    """Knots of the monotone mapping: the model's score ascending (its continuity output's probability, or
    hostility), the TOXICITY each maps to non-decreasing."""

    score: tuple[float, ...]
    toxicity: tuple[float, ...]

    def __call__(self, score: float) -> float:
        return float(np.interp(score, self.score, self.toxicity))

    def as_card(self) -> dict[str, list[float]]:
        return {"score": list(self.score), "toxicity": list(self.toxicity)}

    @classmethod
    def from_card(cls, knots: dict[str, list[float]], continuity: bool) -> ToxicityMap:
        """A card's knots, for a network that gives the continuity output or not; a ValueError where they cannot
        map the score that network puts on the scale (a hand-edited card, or one beside another model's heads)."""
        # "hostility": the cards of models without a continuity output, which mapped hostility
        if "score" not in knots and continuity:
            raise ValueError("its knots map hostility, but this network's TOXICITY is its continuity output")
        try:
            score, toxicity = (
                np.asarray(knots[k], dtype=float) for k in ("score" if "score" in knots else "hostility", "toxicity")
            )
        except (TypeError, ValueError):
            raise ValueError("its knots are not lists of numbers") from None
        if score.ndim != 1 or not score.size or score.shape != toxicity.shape or not np.all(np.diff(score) > 0):
            raise ValueError("its knots are not pairs of strictly ascending scores and their TOXICITY")
        return cls(tuple(score.tolist()), tuple(toxicity.tolist()))


def fit(score: Sequence[float], toxicity: Sequence[float]) -> ToxicityMap:
    """Isotonic regression of Perspective's scores on the model's (training rows only)."""
    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit(np.asarray(score, dtype=float), np.asarray(toxicity, dtype=float))
    x, y = np.round(model.X_thresholds_, 6), np.round(model.y_thresholds_, 6)
    kept = np.r_[True, np.diff(x) > 0]  # rounding can merge knots: np.interp wants x strictly ascending
    return ToxicityMap(tuple(x[kept].tolist()), tuple(y[kept].tolist()))


def agreement(mapped: Sequence[float], perspective: Sequence[float]) -> list[dict[str, float | int]]:
    """Per Perspective threshold: how often civmon's TOXICITY and Perspective fall on the same side, with counts
    and Cohen's kappa (agreement beyond chance: at 0.9 nearly every post is below both, so plain agreement
    alone flatters)."""
    ours, theirs = np.asarray(mapped, dtype=float), np.asarray(perspective, dtype=float)
    rows: list[dict[str, float | int]] = []
    for t in PERSPECTIVE_THRESHOLDS:
        a, b = ours >= t, theirs >= t
        kappa = cohen_kappa_score(a, b) if a.any() or b.any() else float("nan")
        rows.append(
            {
                "threshold": t,
                "n": len(a),
                "perspective_above": int(b.sum()),
                "civmon_above": int(a.sum()),
                "both_above": int((a & b).sum()),
                "agreement": float((a == b).mean()),
                "kappa": float(kappa),
            }
        )
    return rows
