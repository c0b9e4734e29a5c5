"""What every scorer provides, and the alliance index built from its scores.

Dimensions, each a probability-like score in [0, 1]:
  hostility        hostile, uncivil, insulting or contemptuous (required of every model)
  respect          politeness, acknowledging the other person
  warmth           caring, gratitude, admiration, approval
  insult, threat, identity_attack, profanity   where a model provides them
A dimension a model does not provide is absent from its results, never 0.

Alliance index, in [-1, 1]:  mean(respect, warmth) - hostility, over whichever of respect
and warmth the model provides. +1 is a warm, respectful comment without hostility; -1 a
hostile one with neither. A model with neither respect nor warmth has no alliance index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

DIMENSIONS = ("hostility", "respect", "warmth", "insult", "threat", "identity_attack", "profanity")
POSITIVE = ("respect", "warmth")
TOXICITY = "perspective_toxicity"  # a score beside the dimensions: Perspective's TOXICITY scale, not a dimension


class Scorer(Protocol):
    name: str
    version: str  # what the stored scores cite: encoder + heads fingerprint, or hub id + revision
    dimensions: tuple[str, ...]
    thresholds: Mapping[str, float]  # per binary dimension: above it, a comment counts as e.g. hostile
    chunk_words: int  # longer comments are scored in chunks of at most this many words (the model's window)

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Scores for texts already prepared by `monitor.scoring.text` (non-empty, English): one per dimension, and
        TOXICITY where the model puts a score on Perspective's scale."""
        ...


def perspective_toxicity(scores: Mapping[str, float]) -> float | None:
    """A text's score on Perspective's TOXICITY scale: the model's (`monitor.scoring.perspective`), else hostility as
    it is (a hub model's own toxicity probability), else None."""
    return scores.get(TOXICITY, scores.get("hostility"))


def alliance_index(scores: Mapping[str, float]) -> float | None:
    positives = [scores[d] for d in POSITIVE if d in scores]
    if not positives or "hostility" not in scores:
        return None
    return sum(positives) / len(positives) - scores["hostility"]


def files_digest(paths: Iterable[Path]) -> str:
    """A short hash of files' names and contents (read in blocks: weights can be gigabytes), for model versions."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()[:12]
