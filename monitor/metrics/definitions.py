"""Every community metric in one place: what it means, how it is computed, and the least
data below which it is not shown (a quiet week must not read as a trend)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Definition:
    title: str
    meaning: str
    formula: str
    min_sample: int
    sample_of: str


METRICS = {
    "hostility": Definition(
        "Mean hostility",
        "How hostile the average comment is.",
        "mean of per-comment hostility scores; 95% Student t interval",
        10,
        "scored comments",
    ),
    "hostile_share": Definition(
        "Hostile share",
        "Share of comments the model calls hostile.",
        "comments with hostility >= the model's threshold / scored comments; 95% Wilson interval",
        10,
        "scored comments",
    ),
    "respect": Definition(
        "Mean respect",
        "Politeness and acknowledgement of the other person.",
        "mean of per-comment respect scores; 95% t interval",
        10,
        "scored comments",
    ),
    "warmth": Definition(
        "Mean warmth",
        "Caring, gratitude, admiration, approval.",
        "mean of per-comment warmth scores; 95% t interval",
        10,
        "scored comments",
    ),
    "alliance": Definition(
        "Alliance index",
        "Respect and warmth against hostility: above 0, the alliance wins.",
        "mean over comments of mean(respect, warmth) - hostility, in [-1, 1]; 95% t interval",
        10,
        "scored comments",
    ),
    "reciprocity": Definition(
        "Hostility reciprocity",
        "Whether hostility breeds hostility: replies to hostile comments against replies to civil ones.",
        "P(reply hostile | parent hostile) and P(reply hostile | parent civil), Wilson intervals; their ratio",
        20,
        "replies in each group",
    ),
    "depth": Definition(
        "Hostility by depth",
        "Whether conversations sour as they go deeper.",
        "mean hostility per reply depth (0 = answers the thread; 10 and deeper pooled)",
        20,
        "scored comments at that depth",
    ),
    "derailed": Definition(
        "Derailed threads",
        "Threads that open civil and turn hostile.",
        "threads started in the period with >= 20 scored comments whose first 10 (by time) are at most 10% "
        "hostile and whose later comments are at least 30% hostile; the turn is the first hostile comment "
        "after the opening",
        20,
        "scored comments in the thread",
    ),
    "polarisation": Definition(
        "Polarisation",
        "Whether the community splits into camps rather than sharing a tone.",
        "standard deviation of hostility, and Sarle's bimodality coefficient (skew^2 + 1) / (excess kurtosis + "
        "3(n-1)^2/((n-2)(n-3))); above 5/9 suggests two modes",
        50,
        "scored comments",
    ),
    "concentration": Definition(
        "Concentration",
        "A few bad actors, or a culture: how much of the hostility the most hostile authors write.",
        "share of hostile comments written by the top 1% and top 10% of (pseudonymised) authors, ranked by their "
        "hostile comments",
        20,
        "hostile comments",
    ),
}


def shown(metric: str, sample: int) -> bool:
    return sample >= METRICS[metric].min_sample
