"""Continuity with Perspective API: civmon's hostility on Perspective's TOXICITY scale.

Researchers' series and moderators' thresholds ("above 0.8") were built on Perspective's TOXICITY.
civmon's hostility ranks comments much as TOXICITY does (the model card gives the Spearman on held-out
CAT posts), but its probabilities are calibrated to forum base rates, not to Perspective's scale. The
mapping is isotonic regression of Perspective's published score on hostility: monotone (a higher
hostility never maps lower), linear between its knots, clipped at the ends. It is fitted on the CAT
posts of the train split only (task `cat_perspective`), so the agreement measured on the test split
is an honest one.
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
    """Knots of the monotone mapping: hostility ascending, the TOXICITY each maps to non-decreasing."""

    hostility: tuple[float, ...]
    toxicity: tuple[float, ...]

    def __call__(self, hostility: float) -> float:
        return float(np.interp(hostility, self.hostility, self.toxicity))

    def as_card(self) -> dict[str, list[float]]:
        return {"hostility": list(self.hostility), "toxicity": list(self.toxicity)}

    @classmethod
    def from_card(cls, knots: dict[str, list[float]]) -> ToxicityMap:
        return cls(tuple(knots["hostility"]), tuple(knots["toxicity"]))


def fit(hostility: Sequence[float], toxicity: Sequence[float]) -> ToxicityMap:
    """Isotonic regression of Perspective's scores on hostility (training rows only)."""
    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit(np.asarray(hostility, dtype=float), np.asarray(toxicity, dtype=float))
    x, y = np.round(model.X_thresholds_, 6), np.round(model.y_thresholds_, 6)
    kept = np.r_[True, np.diff(x) > 0]  # rounding can merge knots: np.interp wants x strictly ascending
    return ToxicityMap(tuple(x[kept].tolist()), tuple(y[kept].tolist()))


def agreement(mapped: Sequence[float], perspective: Sequence[float]) -> list[dict[str, float | int]]:
    """Per Perspective threshold: how often mapped hostility and Perspective fall on the same side, with counts
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
