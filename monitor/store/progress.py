"""Collection progress: checkpoints and which threads' comment trees to read next.

A checkpoint is a position per (community, stream), written in the same transaction
as the data it covers, so a killed collector resumes where its data ends.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from monitor.store.db import dialect_insert
from monitor.store.models import Checkpoint, Comment, Thread


def get_checkpoint(session: Session, community_id: int, stream: str) -> str | None:
    return session.scalar(
        select(Checkpoint.position).where(Checkpoint.community_id == community_id, Checkpoint.stream == stream)
    )


def set_checkpoint(session: Session, community_id: int, stream: str, position: str) -> None:
    stmt = dialect_insert(session, Checkpoint.__table__).values(
        community_id=community_id, stream=stream, position=position, updated_utc=int(time.time())
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["community_id", "stream"],
            set_={"position": stmt.excluded.position, "updated_utc": stmt.excluded.updated_utc},
        )
    )


def stored_threads(session: Session, community_id: int, platform_ids: Collection[str]) -> set[str]:
    """Which of these threads the store holds already."""
    query = select(Thread.platform_id).where(Thread.community_id == community_id, Thread.platform_id.in_(platform_ids))
    return set(session.scalars(query))


def threads_to_refresh(session: Session, community_id: int, active_since_utc: int, limit: int) -> list[str]:
    """Platform ids of threads started or commented on since `active_since_utc`,
    the least recently read first (never read: first of all)."""
    latest_comment = (
        select(Comment.thread_id, func.max(Comment.created_utc).label("latest"))
        .where(Comment.community_id == community_id)
        .group_by(Comment.thread_id)
        .subquery()
    )
    query = (
        select(Thread.platform_id)
        .outerjoin(latest_comment, latest_comment.c.thread_id == Thread.id)
        .where(
            Thread.community_id == community_id,
            or_(
                func.coalesce(Thread.created_utc, Thread.first_seen_utc) >= active_since_utc,
                latest_comment.c.latest >= active_since_utc,
            ),
        )
        .order_by(func.coalesce(Thread.tree_refreshed_utc, 0), Thread.created_utc.desc(), Thread.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def mark_refreshed(session: Session, community_id: int, platform_ids: Collection[str], when_utc: int) -> None:
    if platform_ids:
        session.execute(
            update(Thread)
            .where(Thread.community_id == community_id, Thread.platform_id.in_(list(platform_ids)))
            .values(tree_refreshed_utc=when_utc)
        )
