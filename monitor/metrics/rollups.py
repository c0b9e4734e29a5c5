"""Rollups: per community, model version and time bucket, computed in SQL on both databases.

Buckets are hours, days and weeks (Monday to Sunday) in UTC; a community's time zone
only changes how the dashboard labels them. Each bucket stores counts and sums, so any
run of buckets adds up exactly and every estimate (mean with a t interval, share with a
Wilson interval, spread and bimodality) follows from them.

Kept up to date incrementally: comments first seen, and scores written, since the last
refresh (the watermark) mark the buckets they fall in, and only those are recomputed. A
full rebuild computes every bucket the same way, so both give the same numbers.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, and_, case, delete, func, insert, literal, select, union
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from monitor.metrics.stats import Estimate, Shape, mean, shape, share
from monitor.store.db import database_now, lock_table, transaction
from monitor.store.models import Comment, ModelVersion, Rollup, RollupState, Score, ScoreClaim

BUCKETS = {"hour": 3600, "day": 86_400, "week": 604_800}
WEEK_OFFSET = 4 * 86_400  # 1970-01-01 was a Thursday: weeks start four days later, on a Monday
DEFAULT_THRESHOLD = 0.5
WRITE_GRACE_S = 60  # longer than a worker's write transaction takes after it checked its lease


def bucket_start(created: ColumnElement[int] | int, bucket: str) -> ColumnElement[int] | int:
    size = BUCKETS[bucket]
    offset = WEEK_OFFSET if bucket == "week" else 0
    return created - (created - offset) % size


def hostile_threshold(session: Session, model_version: str) -> float:
    details = session.scalar(select(ModelVersion.details).where(ModelVersion.version == model_version))
    return float(json.loads(details or "{}").get("thresholds", {}).get("hostility", DEFAULT_THRESHOLD))


def _aggregate(model_version: str, bucket: str, threshold: float) -> tuple[list[str], object]:
    """The SELECT that computes rollup rows from comments and their scores."""
    h, r, w, a = Score.hostility, Score.respect, Score.warmth, Score.alliance
    start = bucket_start(Comment.created_utc, bucket)
    zero = literal(0.0)
    columns = {
        "community_id": Comment.community_id,
        "model_version": literal(model_version),
        "bucket": literal(bucket),
        "start_utc": start,
        "comments": func.count(),
        "scored": func.count(h),
        "hostile": func.coalesce(func.sum(case((h >= threshold, 1), else_=0)), 0),
        "hostility_sum": func.coalesce(func.sum(h), zero),
        "hostility_sum2": func.coalesce(func.sum(h * h), zero),
        "hostility_sum3": func.coalesce(func.sum(h * h * h), zero),
        "hostility_sum4": func.coalesce(func.sum(h * h * h * h), zero),
        "respect_n": func.count(r),
        "respect_sum": func.coalesce(func.sum(r), zero),
        "respect_sum2": func.coalesce(func.sum(r * r), zero),
        "warmth_n": func.count(w),
        "warmth_sum": func.coalesce(func.sum(w), zero),
        "warmth_sum2": func.coalesce(func.sum(w * w), zero),
        "alliance_n": func.count(a),
        "alliance_sum": func.coalesce(func.sum(a), zero),
        "alliance_sum2": func.coalesce(func.sum(a * a), zero),
    }
    query = (
        select(*(expr.label(name) for name, expr in columns.items()))
        .select_from(Comment)
        .outerjoin(Score, and_(Score.comment_id == Comment.id, Score.model_version == model_version))
        .group_by(Comment.community_id, start)
    )
    return list(columns), query


def computed(session: Session, model_version: str, *where: ColumnElement[bool]) -> Iterable[Rollup]:
    """The rollups of the comments matching `where`, computed now and stored nowhere, as a rebuild would store them
    (an export's own: they count exactly the comments it holds, whether or not `civmon metrics` ran since)."""
    threshold = hostile_threshold(session, model_version)
    for bucket in BUCKETS:
        _, query = _aggregate(model_version, bucket, threshold)
        yield from (Rollup(**row._asdict()) for row in session.execute(query.where(*where)))


def rebuild(engine: Engine, model_version: str) -> int:
    """Every bucket of every community, from scratch; returns rollup rows written."""
    with transaction(engine) as session:
        serialise(session)
        started = _safe_watermark(session, model_version)
        threshold = hostile_threshold(session, model_version)
        session.execute(delete(Rollup).where(Rollup.model_version == model_version))
        written = 0
        for bucket in BUCKETS:
            names, query = _aggregate(model_version, bucket, threshold)
            written += _insert_rows(session, names, query)
        _set_watermark(session, model_version, started)
    return written


def refresh(engine: Engine, model_version: str) -> int:
    """Recompute the buckets touched since the last refresh (a full rebuild the first time)."""
    with transaction(engine) as session:
        watermark = session.scalar(select(RollupState.watermark_utc).where(RollupState.model_version == model_version))
    if watermark is None:
        return rebuild(engine, model_version)
    with transaction(engine) as session:
        serialise(session)
        started = _safe_watermark(session, model_version)  # read before the changes are looked for
        threshold = hostile_threshold(session, model_version)
        written = 0
        for bucket in BUCKETS:
            for community_id, low, high in _touched_ranges(session, model_version, bucket, watermark):
                written += _recompute(session, model_version, bucket, threshold, community_id, low, high)
        _set_watermark(session, model_version, started)
    return written


def serialise(session: Session) -> None:
    """One writer of rollups at a time (two `civmon metrics` at once deleted and inserted the same buckets and one
    died on the unique key, on PostgreSQL); readers go on. SQLite's writers are serialised already."""
    lock_table(session, Rollup.__table__, "SHARE ROW EXCLUSIVE")


def _touched_ranges(session: Session, model_version: str, bucket: str, since: int) -> list[tuple[int, int, int]]:
    """(community, first bucket start, end) runs of consecutive buckets holding changes since `since`."""
    starts = touched(session, model_version, bucket, since)
    return [(c, low, high) for c, values in starts.items() for low, high in _runs(sorted(values), BUCKETS[bucket])]


def touched(session: Session, model_version: str, bucket: str, since: int) -> dict[int, set[int]]:
    """Per community, the starts of the buckets holding comments first seen, or scores written, since `since`."""
    start = bucket_start(Comment.created_utc, bucket).label("start")
    # Two indexed lookups rather than one OR across tables, which would scan every comment.
    new_comments = select(Comment.community_id, start).where(Comment.first_seen_utc >= since)
    new_scores = (
        select(Comment.community_id, start)
        .join(Score, Score.comment_id == Comment.id)
        .where(Score.model_version == model_version, Score.scored_utc >= since)
    )
    starts: dict[int, set[int]] = defaultdict(set)
    for community_id, bucket_start_utc in session.execute(union(new_comments, new_scores)):
        starts[community_id].add(bucket_start_utc)
    return starts


def _runs(starts: list[int], size: int) -> Iterable[tuple[int, int]]:
    low = previous = starts[0]
    for value in starts[1:]:
        if value != previous + size:
            yield low, previous + size
            low = value
        previous = value
    yield low, previous + size


def _recompute(
    session: Session, model_version: str, bucket: str, threshold: float, community_id: int, low: int, high: int
) -> int:
    session.execute(
        delete(Rollup).where(
            Rollup.model_version == model_version,
            Rollup.bucket == bucket,
            Rollup.community_id == community_id,
            Rollup.start_utc >= low,
            Rollup.start_utc < high,
        )
    )
    names, query = _aggregate(model_version, bucket, threshold)
    query = query.where(Comment.community_id == community_id, Comment.created_utc >= low, Comment.created_utc < high)
    return _insert_rows(session, names, query)


def _safe_watermark(session: Session, model_version: str) -> int:
    """Where the next refresh must look from. Comments are stamped by the collectors' clock (this machine's,
    in `civmon run`), scores by the database's, so the earlier of both; and earlier still while scoring
    workers hold claims: a worker stamps its scores when it writes them, after its claim, in the
    transaction that deletes the claim, so a score not yet committed as this refresh looks is one whose
    claim it sees here. A claim expired past WRITE_GRACE_S is never written under: it stops counting."""
    now = min(int(time.time()), database_now(session))
    oldest = session.scalar(
        select(func.min(ScoreClaim.claimed_utc)).where(
            ScoreClaim.model_version == model_version, ScoreClaim.expires_utc >= now - WRITE_GRACE_S
        )
    )
    return now if oldest is None else min(now, oldest)


def _set_watermark(session: Session, model_version: str, when: int) -> None:
    # One second of overlap: a score written in the same second as the refresh began is picked up next time.
    state = session.get(RollupState, model_version)
    if state is None:
        session.add(RollupState(model_version=model_version, watermark_utc=when - 1))
    else:
        state.watermark_utc = when - 1


@dataclass(frozen=True)
class BucketStats:
    """What the dashboard and alerts read: estimates with 95% intervals for one bucket or period."""

    start_utc: int
    comments: int
    scored: int
    hostility: Estimate | None
    hostile_share: Estimate | None
    respect: Estimate | None
    warmth: Estimate | None
    alliance: Estimate | None
    shape: Shape | None


def stats(row: Rollup, start_utc: int | None = None) -> BucketStats:
    return BucketStats(
        start_utc=row.start_utc if start_utc is None else start_utc,
        comments=row.comments,
        scored=row.scored,
        hostility=mean(row.scored, row.hostility_sum, row.hostility_sum2),
        hostile_share=share(row.hostile, row.scored),
        respect=mean(row.respect_n, row.respect_sum, row.respect_sum2),
        warmth=mean(row.warmth_n, row.warmth_sum, row.warmth_sum2),
        alliance=mean(row.alliance_n, row.alliance_sum, row.alliance_sum2, bounds=(-1.0, 1.0)),
        shape=shape(row.scored, row.hostility_sum, row.hostility_sum2, row.hostility_sum3, row.hostility_sum4),
    )


KEYS = ("id", "community_id", "model_version", "bucket", "start_utc")
SUMMED = [c for c in Rollup.__table__.c.keys() if c not in KEYS]


def series(
    session: Session, community_id: int, model_version: str, bucket: str, since: int, until: int
) -> list[BucketStats]:
    query = (
        select(Rollup)
        .where(
            Rollup.community_id == community_id,
            Rollup.model_version == model_version,
            Rollup.bucket == bucket,
            Rollup.start_utc >= since,
            Rollup.start_utc < until,
        )
        .order_by(Rollup.start_utc)
    )
    return [stats(row) for row in session.scalars(query)]


def period(session: Session, community_id: int, model_version: str, since: int, until: int) -> BucketStats:
    """One estimate for a whole period: the day buckets inside it, summed."""
    totals = select(*(func.coalesce(func.sum(Rollup.__table__.c[c]), 0).label(c) for c in SUMMED)).where(
        Rollup.community_id == community_id,
        Rollup.model_version == model_version,
        Rollup.bucket == "day",
        Rollup.start_utc >= since,
        Rollup.start_utc < until,
    )
    row = session.execute(totals).one()
    return stats(Rollup(start_utc=since, **row._asdict()), since)


def _insert_rows(session: Session, names: list[str], query: object) -> int:
    """INSERT ... SELECT the rollup rows; returns how many (psycopg reports it only when asked to)."""
    stmt = insert(Rollup).from_select(names, query).execution_options(preserve_rowcount=True)
    return session.execute(stmt).rowcount
