"""Raw comment texts to scores: prepare, score every chunk in one call, combine per comment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.scoring.base import POSITIVE, Scorer, alliance_index
from monitor.scoring.text import Window, prepare


@dataclass(frozen=True)
class Result:
    scores: dict[str, float] | None  # None: not scored, see `reason`
    alliance: float | None
    language: str | None
    reason: str | None = None


def combine(chunks: list[dict[str, float]]) -> dict[str, float]:
    """The worst chunk for hostility, the other harms and TOXICITY; the average for respect and warmth."""
    return {
        dimension: (sum(c[dimension] for c in chunks) / len(chunks))
        if dimension in POSITIVE
        else max(c[dimension] for c in chunks)
        for dimension in chunks[0]
    }


def score_texts(scorer: Scorer, texts: Sequence[str | None]) -> list[Result]:
    # a scorer that says how its tokenizer cuts text gets chunks its window holds whole, however the text is made
    window: Window | None = getattr(scorer, "window", None)
    prepared = [prepare(text, scorer.chunk_words, window) for text in texts]
    flat = [chunk for p in prepared for chunk in p.chunks]
    chunk_scores = iter(scorer.score(flat) if flat else [])
    results = []
    for p in prepared:
        if not p.chunks:
            results.append(Result(None, None, p.language, p.skip_reason))
            continue
        scores = combine([next(chunk_scores) for _ in p.chunks])
        if not scores:  # never silently "scored" with nothing in it
            results.append(Result(None, None, p.language, "the model returned no scores"))
            continue
        results.append(Result(scores, alliance_index(scores), p.language))
    return results
