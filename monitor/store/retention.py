"""Retention: comment bodies older than `retention_days` are purged; structure, scores and
pseudonyms stay, so trends remain while the text is gone. Old run-log rows are trimmed too."""

from __future__ import annotations

import time

from sqlalchemy import Engine, delete, update

from monitor.config import PrivacySettings
from monitor.store.db import transaction
from monitor.store.models import CollectionRun, Comment, Thread

RUN_LOG_DAYS = 90


def purge(engine: Engine, privacy: PrivacySettings, now: int | None = None) -> tuple[int, int]:
    """(comment bodies purged, run-log rows removed)."""
    now = now or int(time.time())
    purged = 0
    with transaction(engine) as session:
        if privacy.retention_days is not None:
            cutoff = now - privacy.retention_days * 86_400
            purged = session.execute(
                update(Comment)
                .where(Comment.created_utc < cutoff, Comment.body.is_not(None))
                .values(body=None)
                .execution_options(preserve_rowcount=True)
            ).rowcount
            session.execute(
                update(Thread).where(Thread.created_utc < cutoff, Thread.body.is_not(None)).values(body=None)
            )
        trimmed = session.execute(
            delete(CollectionRun)
            .where(CollectionRun.started_utc < now - RUN_LOG_DAYS * 86_400)
            .execution_options(preserve_rowcount=True)
        ).rowcount
    return purged, trimmed
