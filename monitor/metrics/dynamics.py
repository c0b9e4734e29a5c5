"""Conversation dynamics of a community in a period: reciprocity of hostility, hostility by
depth, derailed threads, polarisation and concentration (definitions: `definitions.py`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session, aliased

from monitor.metrics.definitions import shown
from monitor.metrics.rollups import hostile_threshold, period
from monitor.metrics.stats import Estimate, Shape, share
from monitor.store.models import Comment, Score, Thread

OPENING = 10
DEEPEST = 10
DERAIL_OPENING_MAX, DERAIL_LATER_MIN, DERAIL_MIN_COMMENTS = 0.10, 0.30, 20


@dataclass(frozen=True)
class Scope:
    community_id: int
    model_version: str
    since: int
    until: int


def _scored(scope: Scope, comment: type[Comment] = Comment, score: type[Score] = Score) -> list:  # type: ignore[type-arg]
    return [score.comment_id == comment.id, score.model_version == scope.model_version, score.hostility.is_not(None)]


def _in_period(scope: Scope) -> list:  # type: ignore[type-arg]
    return [
        Comment.community_id == scope.community_id,
        Comment.created_utc >= scope.since,
        Comment.created_utc < scope.until,
    ]


@dataclass(frozen=True)
class Reciprocity:
    after_hostile: Estimate | None
    after_civil: Estimate | None

    @property
    def ratio(self) -> float | None:
        if not (self.after_hostile and self.after_civil) or self.after_civil.value == 0:
            return None
        return self.after_hostile.value / self.after_civil.value


def reciprocity(session: Session, scope: Scope) -> Reciprocity:
    threshold = hostile_threshold(session, scope.model_version)
    parent, parent_score = aliased(Comment), aliased(Score)
    parent_hostile = case((parent_score.hostility >= threshold, 1), else_=0)
    query = (
        select(parent_hostile, func.count(), func.sum(case((Score.hostility >= threshold, 1), else_=0)))
        .select_from(Comment)
        .join(Score, and_(*_scored(scope)))
        .join(
            parent,
            and_(
                parent.community_id == Comment.community_id,
                parent.thread_id == Comment.thread_id,
                parent.platform_id == Comment.parent_platform_id,
            ),
        )
        .join(parent_score, and_(*_scored(scope, parent, parent_score)))
        .where(*_in_period(scope))
        .group_by(parent_hostile)
    )
    groups = {bool(h): (n, k) for h, n, k in session.execute(query)}
    estimate = lambda n_k: share(n_k[1], n_k[0]) if shown("reciprocity", n_k[0]) else None  # noqa: E731
    return Reciprocity(estimate(groups.get(True, (0, 0))), estimate(groups.get(False, (0, 0))))


def by_depth(session: Session, scope: Scope) -> dict[int, tuple[float, int]]:
    """Depth (DEEPEST = that or deeper) -> (mean hostility, comments), where the sample suffices."""
    depth = case((Comment.depth >= DEEPEST, DEEPEST), else_=Comment.depth)
    query = (
        select(depth, func.avg(Score.hostility), func.count())
        .join(Score, and_(*_scored(scope)))
        .where(*_in_period(scope), Comment.depth.is_not(None))
        .group_by(depth)
        .order_by(depth)
    )
    return {d: (float(m), n) for d, m, n in session.execute(query) if shown("depth", n)}


@dataclass(frozen=True)
class Derailed:
    thread: str
    title: str | None
    opening_share: float
    later_share: float
    comments: int
    turn_comment: str | None  # platform id of the first hostile comment after the opening


def derailed(session: Session, scope: Scope) -> list[Derailed]:
    threshold = hostile_threshold(session, scope.model_version)
    # A thread belongs to the period it started in (its whole history counts): bounded by the period.
    started = func.coalesce(Thread.created_utc, Thread.first_seen_utc)
    active = select(Thread.id).where(
        Thread.community_id == scope.community_id, started >= scope.since, started < scope.until
    )
    hostile = case((Score.hostility >= threshold, 1), else_=0)
    # Ranking comments is the costly part: rank only threads that could qualify by their totals
    # (enough comments, and enough hostile ones for the later share even if the opening is civil).
    candidates = (
        select(Comment.thread_id)
        .join(Score, and_(*_scored(scope)))
        .where(Comment.community_id == scope.community_id, Comment.thread_id.in_(active))
        .group_by(Comment.thread_id)
        .having(func.count() >= DERAIL_MIN_COMMENTS, func.sum(hostile) >= DERAIL_LATER_MIN * (func.count() - OPENING))
    )
    rank = func.row_number().over(partition_by=Comment.thread_id, order_by=(Comment.created_utc, Comment.id))
    ranked = (
        select(Comment.thread_id, Comment.platform_id, hostile.label("hostile"), rank.label("rn"))
        .join(Score, and_(*_scored(scope)))
        .where(Comment.community_id == scope.community_id, Comment.thread_id.in_(candidates))
        .subquery()
    )
    opening = ranked.c.rn <= OPENING
    per_thread = (
        select(
            ranked.c.thread_id,
            func.count(),
            func.sum(case((opening, ranked.c.hostile), else_=0)),
            func.sum(case((opening, 0), else_=ranked.c.hostile)),
            func.min(case((and_(~opening, ranked.c.hostile == 1), ranked.c.rn))),
        )
        .group_by(ranked.c.thread_id)
        .having(func.count() >= DERAIL_MIN_COMMENTS)
    )
    found = []
    for thread_id, n, opening_hostile, later_hostile, turn_rank in session.execute(per_thread):
        opening_share, later_share = opening_hostile / OPENING, later_hostile / (n - OPENING)
        if opening_share <= DERAIL_OPENING_MAX and later_share >= DERAIL_LATER_MIN:
            thread = session.get(Thread, thread_id)
            turn = session.execute(
                select(ranked.c.platform_id).where(ranked.c.thread_id == thread_id, ranked.c.rn == turn_rank)
            ).scalar()
            found.append(Derailed(thread.platform_id, thread.title, opening_share, later_share, n, turn))
    return sorted(found, key=lambda d: -d.later_share)


def polarisation(session: Session, scope: Scope) -> Shape | None:
    stats = period(session, scope.community_id, scope.model_version, scope.since, scope.until)
    return stats.shape if stats.shape and shown("polarisation", stats.scored) else None


@dataclass(frozen=True)
class Concentration:
    top_1_percent: float
    top_10_percent: float
    authors: int
    hostile_comments: int


def concentration(session: Session, scope: Scope) -> Concentration | None:
    threshold = hostile_threshold(session, scope.model_version)
    query = (
        select(func.sum(case((Score.hostility >= threshold, 1), else_=0)))
        .select_from(Comment)
        .join(Score, and_(*_scored(scope)))
        .where(*_in_period(scope), Comment.author.is_not(None))
        .group_by(Comment.author)
    )
    per_author = sorted((int(k) for (k,) in session.execute(query)), reverse=True)
    hostile = sum(per_author)
    if not shown("concentration", hostile):
        return None

    def top(fraction: float) -> float:
        return sum(per_author[: math.ceil(fraction * len(per_author))]) / hostile

    return Concentration(top(0.01), top(0.10), len(per_author), hostile)
