"""Per-community health of the store, for `civmon status`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from monitor.store.models import CollectionRun, Comment, Community, RunStatus, Score


@dataclass(frozen=True)
class CommunityStatus:
    platform: str
    name: str
    comments: int
    scored: int
    last_run_started_utc: int | None
    last_run_status: RunStatus | None
    last_run_error: str | None


def community_status(session: Session) -> list[CommunityStatus]:
    comments = select(Comment.community_id, func.count().label("n")).group_by(Comment.community_id).subquery()
    # A comment counts as scored when some model version holds a current (not stale) score for it.
    scored_ids = select(Score.comment_id).where(Score.stale.is_(False)).distinct().subquery()
    scored = (
        select(Comment.community_id, func.count().label("n"))
        .join(scored_ids, scored_ids.c.comment_id == Comment.id)
        .group_by(Comment.community_id)
        .subquery()
    )
    latest = (
        select(CollectionRun.community_id, func.max(CollectionRun.id).label("run_id"))
        .where(CollectionRun.community_id.is_not(None))
        .group_by(CollectionRun.community_id)
        .subquery()
    )
    query = (
        select(
            Community.platform,
            Community.name,
            func.coalesce(comments.c.n, 0),
            func.coalesce(scored.c.n, 0),
            CollectionRun.started_utc,
            CollectionRun.status,
            CollectionRun.error,
        )
        .outerjoin(comments, comments.c.community_id == Community.id)
        .outerjoin(scored, scored.c.community_id == Community.id)
        .outerjoin(latest, latest.c.community_id == Community.id)
        .outerjoin(CollectionRun, CollectionRun.id == latest.c.run_id)
        .order_by(Community.platform, Community.name)
    )
    return [CommunityStatus(*row) for row in session.execute(query)]


@dataclass(frozen=True)
class JobStatus:
    job: str  # "collect reddit/name", "score", "metrics", ...
    last_start_utc: int
    last_success_utc: int | None
    last_status: RunStatus
    last_error: str | None


def job_status(session: Session) -> list[JobStatus]:
    """Per job (and community, for collection): its latest run and its latest successful one."""
    key = (CollectionRun.job, CollectionRun.community_id)
    latest = select(*key, func.max(CollectionRun.id).label("run_id")).group_by(*key).subquery()
    succeeded = (
        select(*key, func.max(CollectionRun.started_utc).label("at"))
        .where(CollectionRun.status.in_([RunStatus.OK, RunStatus.PARTIAL]))
        .group_by(*key)
        .subquery()
    )
    query = (
        select(CollectionRun, Community.platform, Community.name, succeeded.c.at)
        .join(latest, latest.c.run_id == CollectionRun.id)
        .outerjoin(Community, Community.id == CollectionRun.community_id)
        .outerjoin(
            succeeded,
            and_(
                succeeded.c.job == CollectionRun.job,
                succeeded.c.community_id.is_not_distinct_from(CollectionRun.community_id),
            ),
        )
        .order_by(CollectionRun.job, Community.name)
    )
    return [
        JobStatus(f"{run.job} {platform}/{name}" if platform else run.job, run.started_utc, at, run.status, run.error)
        for run, platform, name, at in session.execute(query)
    ]
