"""Retention: comment bodies older than `retention_days` are purged once scored; structure, scores and
pseudonyms stay, so trends remain while the text is gone. A comment no model has scored yet (a year-old dump just
imported, a scoring backlog) keeps its text until it is: purged first, it could never be scored, and the export
would call it waiting for `civmon score`. Old run-log rows are trimmed too.

With `keep_bodies = false` the store keeps no text once it is not needed: thread bodies are
not stored at all and comment bodies go when scored. This job also purges what was stored
before the setting changed: every thread body, and the bodies of comments already scored (as does each scoring run).
Titles stay either way: a thread is shown by its title."""

from __future__ import annotations

import time

from sqlalchemy import ColumnElement, Engine, delete, exists, true, update
from sqlalchemy.orm import Session

from monitor.config import PrivacySettings
from monitor.store.db import transaction
from monitor.store.models import CollectionRun, Comment, Score, Thread

RUN_LOG_DAYS = 90


def purge(engine: Engine, privacy: PrivacySettings, now: int | None = None) -> tuple[int, int]:
    """(comment bodies purged, run-log rows removed)."""
    now = now or int(time.time())
    purged = 0
    with transaction(engine) as session:
        if privacy.retention_days is not None:
            cutoff = now - privacy.retention_days * 86_400
            purged += _purge_bodies(session, (Comment.created_utc < cutoff) & _scored(), Thread.created_utc < cutoff)
        if not privacy.keep_bodies:
            purged += purge_unneeded_bodies(session)
        trimmed = session.execute(
            delete(CollectionRun)
            .where(CollectionRun.started_utc < now - RUN_LOG_DAYS * 86_400)
            .execution_options(preserve_rowcount=True)
        ).rowcount
    return purged, trimmed


def purge_unneeded_bodies(session: Session, model_version: str | None = None) -> int:
    """With `keep_bodies = false`: every thread body, and the bodies of comments scored (by `model_version`, or by
    any); the number of comments. An unscored or stale comment keeps its text until scoring, which drops it then.
    `civmon score` runs this for its own model, so switching the setting on takes effect at the next scoring, and
    a comment only an older model scored keeps its text for the new one."""
    return _purge_bodies(session, _scored(model_version), true())


def _scored(model_version: str | None = None) -> ColumnElement[bool]:
    """A comment scored as it reads now (by `model_version`, or by any model)."""
    scored = exists().where(Score.comment_id == Comment.id, Score.stale.is_(False))
    return scored if model_version is None else scored.where(Score.model_version == model_version)


def _purge_bodies(session: Session, comments: ColumnElement[bool], threads: ColumnElement[bool]) -> int:
    """Drop the bodies of the comments and threads matching these conditions; the number of comments."""
    session.execute(update(Thread).where(threads, Thread.body.is_not(None)).values(body=None))
    return session.execute(
        update(Comment)
        .where(comments, Comment.body.is_not(None))
        .values(body=None)
        .execution_options(preserve_rowcount=True)
    ).rowcount
