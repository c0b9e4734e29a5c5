"""Idempotent bulk writes of what sources collect.

A batch goes into a temporary staging table (COPY on PostgreSQL), is counted against
the stored rows in one indexed read, then written by one set-based upsert whose SET
clause applies the rules to each row: new rows are inserted, edited rows updated (their
scores marked stale), newly deleted or removed rows change state and, unless the privacy
settings keep deleted content, lose their text and author. Rows that did not change
only get their platform score, `last_seen_utc` and a depth learned meanwhile, so
collecting the same comments twice changes nothing else. The rules are decided by the
row as stored when the upsert reaches it, so two writers racing on the same comments
leave what either alone would (only the counts can be off, as they were before). Authors
are pseudonymised here, so no source can forget to.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Engine, String, Table, case, func, literal, select, update
from sqlalchemy.orm import Session

from monitor.config import PrivacySettings
from monitor.errors import CivmonError
from monitor.privacy import Pseudonymiser
from monitor.records import CommentRecord, CommunityRef, ItemState, ThreadRecord, community_name_problem
from monitor.store.authorship import require_keying
from monitor.store.db import dialect_insert, transaction
from monitor.store.models import Comment, Community, Score, Thread
from monitor.store.staging import Stage

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


# The batch's columns as set-based SQL needs them (states as plain text).
THREAD_STAGE = Stage(
    "civmon_thread_stage",
    Thread.__table__,
    ["community_id", "platform_id", "title", "author", "body", "url", "permalink", "platform_score"]
    + ["num_comments", "created_utc", "first_seen_utc", "last_seen_utc"],
    Column("state", String(16)),
)
COMMENT_STAGE = Stage(
    "civmon_comment_stage",
    Comment.__table__,
    ["thread_id", "platform_id", "parent_platform_id", "depth", "author", "body", "body_hash", "platform_score"]
    + ["permalink", "created_utc", "edited_utc"],
    Column("state", String(16)),
)


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
        require_keying(self.session, self.pseudonymiser)
        community = community_id(self.session, ref)
        now = int(time.time())
        thread_ids = self._upsert_threads(community, ref.platform, list(threads), now)
        return self._upsert_comments(community, ref.platform, list(comments), thread_ids, now)

    # -- threads: a stub only creates, a full record updates --------------------------------------

    def _upsert_threads(
        self, community_id: int, platform: str, threads: list[ThreadRecord], now: int
    ) -> dict[str, int]:
        """Upsert the batch's threads; the row ids of those written (a stub already stored is not)."""
        # A full record beats a stub of the same thread in the same batch, whatever the order.
        ordered = sorted(threads, key=lambda t: not t.is_stub)
        rows: dict[str, dict[str, Any]] = {}
        for t in ordered:
            if not (t.is_stub and t.platform_id in rows):
                rows[t.platform_id] = self._thread_row(community_id, platform, t, now)
        if not rows:
            return {}
        staged = THREAD_STAGE.fill(self.session, [tuple(row[n] for n in THREAD_STAGE.names) for row in rows.values()])
        created, ids = staged.c.created_utc, Thread.__table__.c
        written: dict[str, int] = {}
        if any(row["created_utc"] is None for row in rows.values()):  # a stub only creates an undescribed thread
            stubs = self._threads_from(staged, created.is_(None))
            stubs = stubs.on_conflict_do_nothing(index_elements=["community_id", "platform_id"])
            written.update(dict(self.session.execute(stubs.returning(ids.platform_id, ids.id)).all()))
        if any(row["created_utc"] is not None for row in rows.values()):
            full = self._thread_upsert(self._threads_from(staged, created.is_not(None)))
            written.update(dict(self.session.execute(full.returning(ids.platform_id, ids.id)).all()))
        return written

    def _threads_from(self, staged: Table, where: Any) -> Any:
        """INSERT of the staged threads that match, in key order: writers that overlap lock rows alike."""
        source = select(*(staged.c[n] for n in THREAD_STAGE.names)).where(where).order_by(staged.c.platform_id)
        return dialect_insert(self.session, Thread.__table__).from_select(THREAD_STAGE.names, source)

    def _thread_upsert(self, stmt: Any) -> Any:
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

    def _thread_ids(self, community_id: int, platform_ids: set[str], written: dict[str, int]) -> dict[str, int]:
        """The row ids of these threads: written with the batch, else stored."""
        found = {p: written[p] for p in platform_ids if p in written}
        ordered = sorted(platform_ids - found.keys())
        for start in range(0, len(ordered), IN_CHUNK):
            query = select(Thread.platform_id, Thread.id).where(
                Thread.community_id == community_id, Thread.platform_id.in_(ordered[start : start + IN_CHUNK])
            )
            found.update((row.platform_id, row.id) for row in self.session.execute(query))
        missing = platform_ids - found.keys()
        if missing:
            raise ValueError(f"comments refer to threads neither stored nor in the batch: {sorted(missing)[:5]}")
        return found

    # -- comments: staged, counted against what is stored, then written in one upsert -----------

    def _upsert_comments(
        self, community_id: int, platform: str, comments: list[CommentRecord], threads: dict[str, int], now: int
    ) -> UpsertResult:
        if not comments:
            return UpsertResult()
        batch = {c.platform_id: c for c in comments}  # a repeated id in one batch: the last one wins
        thread_ids = self._thread_ids(community_id, {c.thread_id for c in batch.values()}, threads)
        # Staged in key order too, so that whatever plan marks scores stale, writers lock them in one order.
        rows = [self._comment_row(platform, batch[key], thread_ids[batch[key].thread_id]) for key in sorted(batch)]
        staged = COMMENT_STAGE.fill(self.session, rows)
        result = self._classify(community_id, staged)
        if result.updated:  # only an edit changes a stored hash
            self._mark_stale(community_id, staged)
        self.session.execute(self._comment_upsert(community_id, staged, now))
        return result

    def _comment_row(self, platform: str, c: CommentRecord, thread_id: int) -> tuple[Any, ...]:
        """A staged row, in COMMENT_STAGE's column order."""
        live = c.state is ItemState.LIVE
        body = clean_text(c.body) if live else None
        author = self.pseudonymiser.author(platform, c.author) if live else None
        return (
            thread_id,
            c.platform_id,
            c.parent_id,
            c.depth,
            author,
            body,
            body_hash(body),
            c.platform_score,
            c.permalink,
            c.created_utc,
            c.edited_utc,
            c.state.value,
        )

    # Each staged row looks up its stored one through the unique index (a correlated subquery): a join
    # would leave the plan to statistics, which lag behind a table that bulk loads are filling.

    def _classify(self, community_id: int, staged: Table) -> UpsertResult:
        """What the batch does to the stored rows, counted before it is written."""
        s, old = staged.c, Comment.__table__
        edit, gone = _changes(old.c, s)
        kind = select(case((edit, "updated"), (gone, "deleted"), else_="unchanged")).where(
            _stored(old, community_id, s.platform_id)
        )
        kinds = select(kind.scalar_subquery().label("kind")).select_from(staged).subquery()
        counts = {
            kind: n for kind, n in self.session.execute(select(kinds.c.kind, func.count()).group_by(kinds.c.kind))
        }
        return UpsertResult(
            new=counts.get(None, 0),
            updated=counts.get("updated", 0),
            deleted=counts.get("deleted", 0),
            unchanged=counts.get("unchanged", 0),
        )

    def _mark_stale(self, community_id: int, staged: Table) -> None:
        # Only the text's hash: a restored comment whose text is what was scored keeps its scores.
        s, old, scores = staged.c, Comment.__table__, Score.__table__
        edited = select(old.c.id).where(
            _stored(old, community_id, s.platform_id), old.c.body_hash.is_distinct_from(s.body_hash)
        )
        ids = select(edited.scalar_subquery()).select_from(staged).where(s.state == ItemState.LIVE.value)
        self.session.execute(
            update(scores).where(scores.c.comment_id.in_(ids), scores.c.stale.is_(False)).values(stale=True)
        )

    def _comment_upsert(self, community_id: int, staged: Table, now: int) -> Any:
        s = staged.c
        columns = {
            "community_id": literal(community_id),
            **{n: s[n] for n in COMMENT_STAGE.names},
            "first_seen_utc": literal(now),
            "last_seen_utc": literal(now),
        }
        # Key order: writers that overlap lock rows alike, never deadlock.
        source = select(*columns.values()).order_by(s.platform_id)
        stmt = dialect_insert(self.session, Comment.__table__).from_select(list(columns), source)
        new, old = stmt.excluded, Comment.__table__.c
        edit, gone = _changes(old, new)
        # Scores stay: a removed comment's hostility is part of the community's record.
        clear = edit if self.privacy.keep_deleted_content else edit | gone  # a deleted record has no body or author
        return stmt.on_conflict_do_update(
            index_elements=["community_id", "platform_id"],
            set_={
                "body": case((clear, new.body), else_=old.body),
                "author": case((clear, new.author), else_=old.author),
                "body_hash": case((edit, new.body_hash), else_=old.body_hash),
                "state": case((edit | gone, new.state), else_=old.state),
                "edited_utc": case((edit, new.edited_utc), else_=old.edited_utc),
                # A listing does not tell a comment's depth; a thread's tree does: keep what is known.
                "depth": case((edit | gone, old.depth), else_=func.coalesce(new.depth, old.depth)),
                "platform_score": new.platform_score,
                "last_seen_utc": new.last_seen_utc,
            },
        )


def _stored(table: Table, community_id: int, platform_id: Any) -> Any:
    """The stored row of this community with that platform id (one probe of the unique index)."""
    return (table.c.community_id == community_id) & (table.c.platform_id == platform_id)


def _changes(old: Any, new: Any) -> tuple[Any, Any]:
    """Conditions on a stored row and its new version: edited (or restored after removal), newly gone.
    Anything else is unchanged: it only refreshes the platform score, last seen time and a known depth."""
    live = new.state == ItemState.LIVE.value
    edit = live & ((old.state != ItemState.LIVE.value) | old.body_hash.is_distinct_from(new.body_hash))
    gone = (new.state != ItemState.LIVE.value) & (old.state == ItemState.LIVE.value)
    return edit, gone
