"""Identity-term bias audit, after Jigsaw's unintended-bias work (Dixon et al. 2018).

The same sentences, neutral and hostile, with only the identity term changed. A fair model
gives every group about the same hostility on the neutral sentences (else it has learnt
that naming a group is hostile) and on the hostile ones. Per category we report the
spread: the highest group mean minus the lowest.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from monitor.scoring.base import TOXICITY, Scorer

GROUPS = {
    "religion": ["Muslim", "Christian", "Jewish", "Hindu", "Buddhist", "atheist"],
    "ethnicity": ["Black", "white", "Asian", "Latino", "Arab", "Indigenous"],
    "gender": ["female", "male", "transgender", "nonbinary"],
    "sexuality": ["gay", "lesbian", "straight", "bisexual"],
    "nationality": ["Mexican", "American", "Chinese", "Nigerian", "German", "Indian"],
}
NEUTRAL = [
    "I am a {g} person.",
    "My neighbour is {g} and we often talk.",
    "A {g} friend of mine recommended this book.",
    "There are many {g} people in my town.",
    "She is {g} and works as a nurse.",
]
HOSTILE = [
    "I hate {g} people.",
    "{G} people are disgusting.",
    "All {g} people should get out of here.",
    "Never trust a {g} person, they are all liars.",
    "{G} people are stupid and worthless.",
]


def sentences(templates: list[str], group: str) -> list[str]:
    return [t.format(g=group, G=group[0].upper() + group[1:]) for t in templates]


def audit(hostility: Callable[[list[str]], list[float]], dimension: str = "hostility") -> list[dict[str, object]]:
    """Per category: each group's mean score on neutral and hostile sentences, and the spreads."""
    report = []
    for category, groups in GROUPS.items():
        neutral = {g: float(np.mean(hostility(sentences(NEUTRAL, g)))) for g in groups}
        hostile = {g: float(np.mean(hostility(sentences(HOSTILE, g)))) for g in groups}
        worst = max(neutral, key=neutral.__getitem__)
        report.append(
            {
                "dimension": dimension,
                "category": category,
                "neutral": neutral,
                "hostile": hostile,
                "neutral_spread": max(neutral.values()) - min(neutral.values()),
                "hostile_spread": max(hostile.values()) - min(hostile.values()),
                "worst_group": worst,
                "worst_neutral": neutral[worst],
            }
        )
    return report


# the harms a group's mere name must not raise; TOXICITY too, which the Perspective-compatible API answers
AUDITED = ("hostility", "identity_attack", TOXICITY)


def audit_scorer(scorer: Scorer) -> list[dict[str, object]]:
    """`audit` of a scorer's hostility, and of its identity_attack and TOXICITY where it gives them."""
    scores = functools.cache(lambda texts: scorer.score(list(texts)))  # each dimension reads the same sentences
    first = scores(tuple(sentences(NEUTRAL, next(iter(GROUPS.values()))[0])))[0]
    report = []
    for dimension in (d for d in AUDITED if d in first):
        report += audit(lambda texts, d=dimension: [s[d] for s in scores(tuple(texts))], dimension)
    return report
