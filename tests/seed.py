"""A database with known structure and known scores, for checking metrics by hand."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update

from monitor.config import PrivacySettings
from monitor.privacy import Pseudonymiser
from monitor.records import CommentRecord, CommunityRef, ThreadRecord
from monitor.scoring.base import alliance_index
from monitor.store.db import transaction
from monitor.store.models import Comment, ModelVersion, Score
from monitor.store.upsert import Writer

MODEL = "seeded@1"
COMMUNITY = CommunityRef("reddit", "seeded")
DAY = 86_400
MONDAY = 1_700_438_400  # 2023-11-20 00:00 UTC, a Monday


@dataclass(frozen=True)
class Seed:
    id: str
    created: int
    hostility: float | None
    thread: str = "t1"
    parent: str | None = None  # None: answers the thread
    depth: int = 0
    author: str = "a"
    respect: float | None = 0.5
    warmth: float | None = 0.5
    first_seen: int | None = None


def seed(engine: Engine, items: list[Seed], community: CommunityRef = COMMUNITY, threshold: float = 0.5) -> None:
    threads = {i.thread for i in items}
    started = {
        t: min(i.created for i in items if i.thread == t) for t in threads
    }  # a thread starts with its first comment
    records = [
        CommentRecord(i.id, i.thread, i.parent or i.thread, i.depth, i.author, f"text of {i.id}", i.created)
        for i in items
    ]
    with transaction(engine) as session:
        Writer(session, PrivacySettings(pseudonymise_authors=False), Pseudonymiser(None)).write(
            community, [ThreadRecord(t, f"title {t}", "op", started[t]) for t in threads], records
        )
        if session.get(ModelVersion, MODEL) is None:
            session.add(
                ModelVersion(
                    version=MODEL,
                    name="seeded",
                    created_utc=0,
                    details=json.dumps({"thresholds": {"hostility": threshold}}),
                )
            )
            session.flush()
        ids = dict(session.execute(select(Comment.platform_id, Comment.id)).all())
        for item in items:
            if item.first_seen is not None:
                session.execute(
                    update(Comment).where(Comment.id == ids[item.id]).values(first_seen_utc=item.first_seen)
                )
        rows = [
            {
                "comment_id": ids[i.id],
                "model_version": MODEL,
                "hostility": i.hostility,
                "respect": i.respect,
                "warmth": i.warmth,
                "stale": False,
                "scored_utc": i.first_seen or 0,
                "alliance": alliance_index({"hostility": i.hostility, "respect": i.respect, "warmth": i.warmth})
                if i.hostility is not None
                else None,
            }
            for i in items
            if i.hostility is not None
        ]
        if rows:
            session.execute(insert(Score), rows)
