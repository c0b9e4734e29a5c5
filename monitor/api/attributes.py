"""Perspective's attribute names for civmon's dimensions: only what the configured model provides.

TOXICITY is hostility on Perspective's scale: mapped by the model's fitted monotone mapping
(`monitor.scoring.perspective`), so thresholds set on Perspective's TOXICITY keep roughly their
meaning. INSULT, THREAT, IDENTITY_ATTACK and PROFANITY exist only where the model has that
dimension; SEVERE_TOXICITY, SEXUALLY_EXPLICIT, FLIRTATION and Perspective's experimental
attributes have no civmon dimension, so they are refused (or dropped, as the request asks), never
made up. civmon's own dimensions are extra attributes: RESPECT and WARMTH (probabilities) and ALLIANCE,
the alliance index in [-1, 1], reported with score type RAW because it is not a probability.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

PERSPECTIVE_NAMES = {
    "hostility": "TOXICITY",
    "insult": "INSULT",
    "threat": "THREAT",
    "identity_attack": "IDENTITY_ATTACK",
    "profanity": "PROFANITY",
    "respect": "RESPECT",
    "warmth": "WARMTH",
}
ALLIANCE = "ALLIANCE"


@dataclass(frozen=True)
class Attribute:
    name: str  # as Perspective names it
    dimension: str | None  # civmon's dimension; None for the alliance index
    score_type: str  # the one score type it gives
    onto_scale: Callable[[float], float] | None = None  # the dimension's score as Perspective's scale has it

    def value(self, scores: dict[str, float], alliance: float | None) -> float | None:
        if self.dimension is None:
            return alliance
        score = scores.get(self.dimension)
        return self.onto_scale(score) if self.onto_scale and score is not None else score


def model_attributes(dimensions: Sequence[str], toxicity: Callable[[float], float]) -> dict[str, Attribute]:
    """The attributes a model with these dimensions can answer, by Perspective name; `toxicity` maps hostility
    onto Perspective's TOXICITY scale (the scorer's `perspective_toxicity`)."""
    found = {
        PERSPECTIVE_NAMES[d]: Attribute(PERSPECTIVE_NAMES[d], d, "PROBABILITY", toxicity if d == "hostility" else None)
        for d in dimensions
        if d in PERSPECTIVE_NAMES
    }
    if "hostility" in dimensions and {"respect", "warmth"} & set(dimensions):  # what alliance_index needs
        found[ALLIANCE] = Attribute(ALLIANCE, None, "RAW")
    return found
