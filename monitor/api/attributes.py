"""Perspective's attribute names for civmon's dimensions: only what the configured model provides.

TOXICITY is the model's score on Perspective's scale (`monitor.scoring.perspective`: its continuity output, or
hostility, through the monotone mapping fitted with the model), so thresholds set on Perspective's TOXICITY keep
roughly their meaning; a model without a mapping (a Hugging Face model) answers its hostility as it is.
INSULT, THREAT, IDENTITY_ATTACK and PROFANITY exist only where the model has that
dimension; SEVERE_TOXICITY, SEXUALLY_EXPLICIT, FLIRTATION and Perspective's experimental
attributes have no civmon dimension, so they are refused (or dropped, as the request asks), never
made up. civmon's own dimensions are extra attributes: RESPECT and WARMTH (probabilities) and ALLIANCE,
the alliance index in [-1, 1], reported with score type RAW because it is not a probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.scoring.base import perspective_toxicity

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

    def value(self, scores: dict[str, float], alliance: float | None) -> float | None:
        if self.dimension is None:
            return alliance
        return perspective_toxicity(scores) if self.dimension == "hostility" else scores.get(self.dimension)


def model_attributes(dimensions: Sequence[str]) -> dict[str, Attribute]:
    """The attributes a model with these dimensions can answer, by Perspective name."""
    found = {
        PERSPECTIVE_NAMES[d]: Attribute(PERSPECTIVE_NAMES[d], d, "PROBABILITY")
        for d in dimensions
        if d in PERSPECTIVE_NAMES
    }
    if "hostility" in dimensions and {"respect", "warmth"} & set(dimensions):  # what alliance_index needs
        found[ALLIANCE] = Attribute(ALLIANCE, None, "RAW")
    return found
