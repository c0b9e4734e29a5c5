"""Idempotent bulk writes of what sources collect.

A batch is compared with the stored rows in one indexed read, then written as a
few bulk statements: new rows are inserted, edited rows updated (their scores
marked stale), newly deleted or removed rows change state and, unless the privacy
settings keep deleted content, lose their text and author. Rows that did not
change only get their `last_seen_utc` refreshed, so collecting the same comments
twice changes nothing else. Authors are pseudonymised here, so no source can
forget to.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.config import PrivacySettings
from monitor.errors import CivmonError
from monitor.privacy import Pseudonymiser
from monitor.records import CommentRecord, CommunityRef, ItemState, ThreadRecord, community_name_problem
from monitor.store.db import transaction
from monitor.store.models import Comment, Community, Score, Thread

# Well below SQLite's and PostgreSQL's bound-parameter limits.
IN_CHUNK = 500


@dataclass
class UpsertResult:
    new: int = 0
    updated: int = 0  # text edited (or restored after removal)
    deleted: int = 0  # newly deleted or removed
    unchanged: int = 0

    def __iadd__(self, other: UpsertResult) -> UpsertResult:
        self.new += other.new
        self.updated += other.updated
        self.deleted += other.deleted
        self.unchanged += other.unchanged
        return self


def body_hash(body: str | None) -> str | None:
    return None if body is None else hashlib.blake2b(body.encode(), digest_size=16).hexdigest()


def clean_text(text: str | None) -> str | None:
    """Text any database accepts: PostgreSQL refuses NUL, and lone surrogates are not UTF-8."""
    if text is None:
        return None
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def dialect_insert(session: Session, table: Table) -> Any:
    """INSERT with ON CONFLICT, in the dialect of the session's database."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def community_id(session: Session, ref: CommunityRef) -> int:
    """The community's row id, creating the row on first sight: only under a name its platform allows,
    whoever asks (a source's bug, a dump line that slipped through), so no store holds `[/oops]` or ''."""
    if problem := community_name_problem(ref.platform, ref.name):
        raise CivmonError(f"a {ref.platform} community name was refused: {problem}")
    if (found := _stored_community(session, ref)) is not None:
        return found
    stmt = dialect_insert(session, Community.__table__).values(
        platform=ref.platform, name=ref.name, created_utc=int(time.time())
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["platform", "name"]))
    found = _stored_community(session, ref)
    assert found is not None  # inserted just now, or by whoever raced us to it
    return found


def _stored_community(session: Session, ref: CommunityRef) -> int | None:
    """The stored community of that name in any case, the oldest if a store from before holds several:
    Reddit's names are case-insensitive, so a dump's `askhistorians` is the configured `AskHistorians`
    (and keeps its stored spelling). Hacker News feeds are lower case, so the rule costs them nothing."""
    return session.scalars(
        select(Community.id)
        .where(Community.platform == ref.platform, func.lower(Community.name) == ref.name.lower())
        .order_by(Community.id)
        .limit(1)
    ).first()


def ensure_community(engine: Engine, ref: CommunityRef) -> int:
    with transaction(engine) as session:
        return community_id(session, ref)


class Writer:
    """Writes one community's records inside the caller's transaction."""

    def __init__(self, session: Session, privacy: PrivacySettings, pseudonymiser: Pseudonymiser) -> None:
        self.session = session
        self.privacy = privacy
        self.pseudonymiser = pseudonymiser

    def write(
        self, ref: CommunityRef, threads: Iterable[ThreadRecord], comments: Iterable[CommentRecord]
    ) -> UpsertResult:
        """Upsert a batch; every comment's thread must be in the batch or already stored."""
        community = community_id(self.session, ref)
        now = int(time.time())
        self._upsert_threads(community, ref.platform, list(threads), now)
        return self._upsert_comments(community, ref.platform, list(comments), now)

    # -- threads: few per batch, so one ON CONFLICT statement does it ---------------------------

    def _upsert_threads(self, community_id: int, platform: str, threads: list[ThreadRecord], now: int) -> None:
        # A full record beats a stub of the same thread in the same batch, whatever the order.
        ordered = sorted(threads, key=lambda t: not t.is_stub)
        rows: dict[str, dict[str, Any]] = {}
        for t in ordered:
            if not (t.is_stub and t.platform_id in rows):
                rows[t.platform_id] = self._thread_row(community_id, platform, t, now)
        stubs = [row for row in rows.values() if row["created_utc"] is None]
        full = [row for row in rows.values() if row["created_utc"] is not None]
        if stubs:  # a stub only creates a thread nobody has described yet
            stmt = dialect_insert(self.session, Thread.__table__)
            self.session.execute(stmt.on_conflict_do_nothing(index_elements=["community_id", "platform_id"]), stubs)
        if full:
            self.session.execute(self._thread_upsert(), full)

    def _thread_upsert(self) -> Any:
        stmt = dialect_insert(self.session, Thread.__table__)
        new, old = stmt.excluded, Thread.__table__.c
        live = new.state == ItemState.LIVE.value
        keep = self.privacy.keep_deleted_content
        return stmt.on_conflict_do_update(
            index_elements=["community_id", "platform_id"],
            set_={
                "title": func.coalesce(new.title, old.title),
                "body": case((live, new.body), else_=old.body if keep else None),
                "author": case((live, new.author), else_=old.author if keep else None),
                "url": func.coalesce(new.url, old.url),
                "permalink": func.coalesce(new.permalink, old.permalink),
                "platform_score": new.platform_score,
                "num_comments": new.num_comments,
                "state": new.state,
                "created_utc": new.created_utc,  # fills in a stub's
                "last_seen_utc": new.last_seen_utc,
            },
        )

    def _thread_row(self, community_id: int, platform: str, t: ThreadRecord, now: int) -> dict[str, Any]:
        return {
            "community_id": community_id,
            "platform_id": t.platform_id,
            "title": clean_text(t.title),
            "author": self.pseudonymiser.author(platform, t.author),
            "body": clean_text(t.body) if self.privacy.keep_bodies else None,  # never scored: nothing to wait for
            "url": clean_text(t.url),
            "permalink": t.permalink,
            "platform_score": t.platform_score,
            "num_comments": t.num_comments,
            "state": t.state.value,
            "created_utc": t.created_utc,
            "first_seen_utc": now,
            "last_seen_utc": now,
        }

    def _thread_ids(self, community_id: int, platform_ids: set[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(sorted(platform_ids)):
            query = select(Thread.platform_id, Thread.id).where(
                Thread.community_id == community_id, Thread.platform_id.in_(chunk)
            )
            found.update((row.platform_id, row.id) for row in self.session.execute(query))
        missing = platform_ids - found.keys()
        if missing:
            raise ValueError(f"comments refer to threads neither stored nor in the batch: {sorted(missing)[:5]}")
        return found

    # -- comments: compare with what is stored, then write only the differences ----------------

    def _upsert_comments(
        self, community_id: int, platform: str, comments: list[CommentRecord], now: int
    ) -> UpsertResult:
        if not comments:
            return UpsertResult()
        batch = {c.platform_id: c for c in comments}  # a repeated id in one batch: the last one wins
        stored = self._stored_comments(community_id, list(batch))
        thread_ids = self._thread_ids(community_id, {c.thread_id for c in batch.values()})

        fresh, edited, gone, touched = [], [], [], []
        result = UpsertResult()
        for platform_id, record in batch.items():
            row = self._comment_row(community_id, platform, record, thread_ids[record.thread_id], now)
            previous = stored.get(platform_id)
            if previous is None:
                fresh.append(row)
                result.new += 1
            elif record.state is ItemState.LIVE and (
                previous.state != ItemState.LIVE or previous.body_hash != row["body_hash"]
            ):
                edited.append(row | {"_id": previous.id, "_stale": previous.body_hash != row["body_hash"]})
                result.updated += 1
            elif record.state is not ItemState.LIVE and previous.state == ItemState.LIVE:
                gone.append(row | {"_id": previous.id})
                result.deleted += 1
            else:
                touched.append(
                    {
                        "_id": previous.id,
                        "platform_score": row["platform_score"],
                        "depth": row["depth"],
                        "last_seen_utc": now,
                    }
                )
                result.unchanged += 1

        self._insert_comments(fresh)
        self._apply_edits(edited)
        self._apply_deletions(gone)
        self._touch(touched)
        return result

    def _stored_comments(self, community_id: int, platform_ids: list[str]) -> dict[str, Any]:
        stored: dict[str, Any] = {}
        for chunk in _chunks(platform_ids):
            query = select(Comment.platform_id, Comment.id, Comment.body_hash, Comment.state).where(
                Comment.community_id == community_id, Comment.platform_id.in_(chunk)
            )
            stored.update((row.platform_id, row) for row in self.session.execute(query))
        return stored

    def _comment_row(
        self, community_id: int, platform: str, c: CommentRecord, thread_id: int, now: int
    ) -> dict[str, Any]:
        body = clean_text(c.body) if c.state is ItemState.LIVE else None
        return {
            "community_id": community_id,
            "thread_id": thread_id,
            "platform_id": c.platform_id,
            "parent_platform_id": c.parent_id,
            "depth": c.depth,
            "author": self.pseudonymiser.author(platform, c.author) if c.state is ItemState.LIVE else None,
            "body": body,
            "body_hash": body_hash(body),
            "state": c.state.value,
            "platform_score": c.platform_score,
            "permalink": c.permalink,
            "created_utc": c.created_utc,
            "edited_utc": c.edited_utc,
            "first_seen_utc": now,
            "last_seen_utc": now,
        }

    def _insert_comments(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            stmt = dialect_insert(self.session, Comment.__table__).on_conflict_do_nothing(
                index_elements=["community_id", "platform_id"]
            )
            self.session.execute(stmt, rows)

    def _apply_edits(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        columns = ("body", "body_hash", "author", "state", "edited_utc", "platform_score", "last_seen_utc")
        self._update_by_id(rows, columns)
        stale = [row["_id"] for row in rows if row["_stale"]]
        for chunk in _chunks(stale):
            self.session.execute(update(Score).where(Score.comment_id.in_(chunk)).values(stale=True))

    def _apply_deletions(self, rows: list[dict[str, Any]]) -> None:
        # Scores stay: a removed comment's hostility is part of the community's record.
        columns = ["state", "platform_score", "last_seen_utc"]
        if not self.privacy.keep_deleted_content:
            columns += ["body", "author"]  # both None in a deleted record's row
        self._update_by_id(rows, columns)

    def _touch(self, rows: list[dict[str, Any]]) -> None:
        # A listing does not tell a comment's depth; a thread's tree does: keep what is known.
        self._update_by_id(rows, ("platform_score", "last_seen_utc", "depth"), keep_known=("depth",))

    def _update_by_id(self, rows: list[dict[str, Any]], columns: Sequence[str], keep_known: Sequence[str] = ()) -> None:
        if not rows:
            return
        table = Comment.__table__
        values = {c: func.coalesce(bindparam(c), table.c[c]) if c in keep_known else bindparam(c) for c in columns}
        stmt = update(table).where(table.c.id == bindparam("_id")).values(values)
        self.session.connection().execute(stmt, [{"_id": r["_id"], **{c: r[c] for c in columns}} for r in rows])
