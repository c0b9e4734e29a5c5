"""The bulk path (a staging table loaded by COPY on PostgreSQL, then set-based SQL) on SQLite and PostgreSQL:
text comes back byte for byte, and counts, edits, deletions and stale scores are what the rules say."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, replace

from sqlalchemy import Engine, insert, select

from monitor.config import PrivacySettings
from monitor.privacy import Pseudonymiser
from monitor.records import CommentRecord, ItemState
from monitor.store.db import transaction
from monitor.store.models import Comment, Community, ModelVersion, Score, Thread
from monitor.store.upsert import UpsertResult, Writer, body_hash, clean_text

from records import COMMUNITY, comments, edited, gone, thread

# What COPY's text format must escape, and what a careless escaper gets wrong.
AWKWARD = [
    "tab\tinside\t\tand at the end\t",
    "unix\nwindows\r\nold mac\rend\n",
    "C:\\path\\to\\file, \\t is no tab, \\n no newline, ends in \\",
    "\\N",
    "\\\\N",
    "\\.",
    "\\.\nafter the end-of-data marker",
    "'single' \"double\" `back` «guillemets»",
    "a,b;c|d\x1fe\x1ef",
    "naïve café ☕ 中文 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🙏🏽 zero\u200bwidth \ufeffbom",
    "bell\x07 escape\x1b[31m delete\x7f backspace\x08",
    "",
    "  spaces around  ",
    "tab\tnewline\nbackslash\\ quote' " * 40_000,  # 1.3 MB, many COPY buffers
]


def write(engine: Engine, privacy: PrivacySettings, batch: list[CommentRecord], threads=None) -> UpsertResult:
    with transaction(engine) as session:
        return Writer(session, privacy, Pseudonymiser(b"k")).write(COMMUNITY, threads or [thread()], batch)


def stored(engine: Engine, *columns) -> dict[str, tuple]:
    with engine.connect() as connection:
        rows = connection.execute(select(Comment.platform_id, *columns))
        return {row[0]: tuple(row[1:]) for row in rows}


def score_all(engine: Engine) -> None:
    with transaction(engine) as session:
        session.merge(ModelVersion(version="m1", name="test model", created_utc=0))
        scored = select(Score.comment_id)
        unscored = session.scalars(select(Comment.id).where(Comment.id.not_in(scored))).all()
        if unscored:
            session.execute(
                insert(Score), [{"comment_id": i, "model_version": "m1", "scored_utc": 0} for i in unscored]
            )


def stale(engine: Engine) -> dict[str, bool]:
    with engine.connect() as connection:
        rows = connection.execute(select(Comment.platform_id, Score.stale).join(Score, Score.comment_id == Comment.id))
        return dict(rows.all())


def test_awkward_text_comes_back_byte_for_byte(engine, privacy):
    title = "title\twith\\tab\nand \\N"
    threads = [replace(thread(), title=title, url="https://x.test/a\tb\\c")]
    batch = [
        replace(c, body=body, author=f"we\\ird\tname{i}", permalink=f"/r/x/\\N/{i}\r\n")
        for i, (c, body) in enumerate(zip(comments(len(AWKWARD)), AWKWARD, strict=True))
    ]
    unpseudonymised = PrivacySettings(key_file=privacy.key_file, pseudonymise_authors=False)
    with transaction(engine) as session:  # authors as given, so they go through COPY as text too
        Writer(session, unpseudonymised, Pseudonymiser(None)).write(COMMUNITY, threads, batch)

    rows = stored(engine, Comment.body, Comment.body_hash, Comment.author, Comment.permalink)
    assert [rows[c.platform_id] for c in batch] == [(c.body, body_hash(c.body), c.author, c.permalink) for c in batch]
    with engine.connect() as connection:
        assert connection.execute(select(Thread.title, Thread.url)).one() == (title, threads[0].url)
    with transaction(engine) as session:  # hashes made in Python match what came back: nothing counts as edited
        again = Writer(session, unpseudonymised, Pseudonymiser(None)).write(COMMUNITY, threads, batch)
    assert (again.new, again.updated, again.deleted, again.unchanged) == (0, 0, 0, len(AWKWARD))


def test_a_mixed_batch_counts_and_writes_each_kind(engine, privacy):
    c = comments(8)
    write(engine, privacy, c)
    write(engine, privacy, [gone(c[3], ItemState.REMOVED), gone(c[4], ItemState.DELETED)])
    score_all(engine)
    news = comments(2, first=100)
    batch = [
        edited(c[0], "edited text"),  # updated, scores stale
        replace(c[1], depth=None, platform_score=42),  # unchanged: score refreshed, depth kept
        gone(c[2], ItemState.DELETED),  # deleted: text and author go, hash and scores stay
        c[3],  # restored with the text that was scored: updated, scores not stale
        gone(c[4], ItemState.REMOVED),  # still gone: unchanged, keeps its first state
        c[5],  # unchanged
        edited(c[6], "a draft"),
        c[6],  # the last of a repeated id wins: unchanged
        c[7],
        gone(c[7], ItemState.REMOVED),  # deleted
        news[0],
        replace(news[1], body="first"),
        replace(news[1], body="second"),  # new, stored as last sent
    ]
    result = write(engine, privacy, batch)

    assert (result.new, result.updated, result.deleted, result.unchanged) == (2, 2, 2, 4)
    rows = stored(engine, Comment.state, Comment.body, Comment.author, Comment.body_hash, Comment.depth)
    assert rows["c0"][:2] == (ItemState.LIVE, "edited text") and rows["c0"][3] == body_hash("edited text")
    assert rows["c1"][4] == 1
    assert rows["c2"] == (ItemState.DELETED, None, None, body_hash(c[2].body), 2)
    assert rows["c3"][:2] == (ItemState.LIVE, c[3].body) and rows["c3"][2] is not None
    assert rows["c4"][:2] == (ItemState.DELETED, None)
    assert rows["c6"][1] == c[6].body and rows["c7"][:2] == (ItemState.REMOVED, None)
    assert rows["c101"][1] == "second" and len(rows) == 10
    assert stored(engine, Comment.platform_score)["c1"] == (42,)
    assert stale(engine) == {f"c{i}": i == 0 for i in range(8)}


def test_two_batches_in_one_transaction_are_counted_apart(engine, privacy):
    first, second = comments(3), comments(2, first=3)
    with transaction(engine) as session:
        writer = Writer(session, privacy, Pseudonymiser(b"k"))
        a = writer.write(COMMUNITY, [thread()], first)
        b = writer.write(COMMUNITY, [thread()], [*second, edited(first[0], "changed")])
    assert (a.new, a.updated) == (3, 0)
    assert (b.new, b.updated, b.unchanged) == (2, 1, 0)
    assert len(stored(engine)) == 5


# -- many random rounds against a plain model of the rules ------------------------------------


@dataclass
class Expected:
    state: ItemState
    body: str | None
    author: str | None
    digest: str | None
    depth: int | None
    score: int | None
    edited_utc: int | None


def model_write(model: dict[str, Expected], stale_ids: set[str], batch: list[CommentRecord], keep: bool) -> tuple:
    """The rules as the store states them, one record at a time: the oracle for the set-based SQL."""
    counts = [0, 0, 0, 0]  # new, updated, deleted, unchanged
    for c in {c.platform_id: c for c in batch}.values():
        live = c.state is ItemState.LIVE
        body = clean_text(c.body) if live else None
        author = Pseudonymiser(b"k").author("reddit", c.author) if live else None
        before = model.get(c.platform_id)
        if before is None:
            model[c.platform_id] = Expected(
                c.state, body, author, body_hash(body), c.depth, c.platform_score, c.edited_utc
            )
            counts[0] += 1
        elif live and (before.state is not ItemState.LIVE or before.digest != body_hash(body)):
            if before.digest != body_hash(body):
                stale_ids.add(c.platform_id)
            before.state, before.body, before.author, before.digest = c.state, body, author, body_hash(body)
            before.edited_utc, before.score = c.edited_utc, c.platform_score
            counts[1] += 1
        elif not live and before.state is ItemState.LIVE:
            before.state, before.score = c.state, c.platform_score
            if not keep:
                before.body = before.author = None
            counts[2] += 1
        else:
            before.score = c.platform_score
            before.depth = c.depth if c.depth is not None else before.depth
            counts[3] += 1
    return tuple(counts)


EDITS = ["same", "other", "tab\there", "back\\slash"]


def mutate(rng: random.Random, c: CommentRecord, round_: int) -> CommentRecord:
    roll = rng.random()
    if roll < 0.2:
        return edited(c, f"round {round_}: {rng.choice(EDITS)}")
    if roll < 0.3:
        return gone(c, rng.choice([ItemState.DELETED, ItemState.REMOVED]))
    if roll < 0.4:
        return replace(c, depth=None, platform_score=rng.randrange(100))
    return c


def test_random_rounds_match_the_rules(engine, tmp_path):
    rng = random.Random(5)
    threads = [thread(1), thread(2)]
    pool = comments(40, thread_id="t1") + comments(40, thread_id="t2", first=40)
    for keep in (False, True):
        model: dict[str, Expected] = {}
        stale_ids: set[str] = set()
        scored: set[str] = set()
        privacy = PrivacySettings(key_file=tmp_path / "k", keep_deleted_content=keep)
        community = replace(COMMUNITY, name=f"keep{int(keep)}")
        for round_ in range(6):
            batch = [mutate(rng, c, round_) for c in rng.sample(pool, 50)]
            batch += rng.sample(batch, 10)  # repeated ids: the last one wins
            rng.shuffle(batch)
            expected = model_write(model, stale_ids, batch, keep)
            with transaction(engine) as session:
                got = Writer(session, privacy, Pseudonymiser(b"k")).write(community, threads, batch)
            assert (got.new, got.updated, got.deleted, got.unchanged) == expected, round_
            assert stored_model(engine, community.name) == model, round_
            if round_ == 1:  # from now on, an edit of these must mark their scores stale
                score_all(engine)
                scored, stale_ids = set(model), set()
            assert {k for k, v in stale_in(engine, community.name).items() if v} == stale_ids & scored, round_


def stored_model(engine: Engine, community: str) -> dict[str, Expected]:
    columns = (Comment.state, Comment.body, Comment.author, Comment.body_hash, Comment.depth)
    with engine.connect() as connection:
        rows = connection.execute(
            select(Comment.platform_id, *columns, Comment.platform_score, Comment.edited_utc)
            .join(Community, Community.id == Comment.community_id)
            .where(Community.name == community)
        )
        return {row[0]: Expected(*row[1:]) for row in rows}


def stale_in(engine: Engine, community: str) -> dict[str, bool]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Comment.platform_id, Score.stale)
            .join(Score, Score.comment_id == Comment.id)
            .join(Community, Community.id == Comment.community_id)
            .where(Community.name == community)
        )
        return dict(rows.all())


def test_writers_editing_the_same_comments_in_opposite_orders_do_not_deadlock(engine, privacy):
    batch = comments(300)
    write(engine, privacy, batch)
    score_all(engine)
    errors: list[BaseException] = []

    stub = [replace(thread(), created_utc=None)]  # locks no thread row, which would make the writers take turns

    def writer(name: str, order: list[CommentRecord]) -> None:
        try:
            for round_ in range(6):  # every comment edited each time: every score row is updated too
                write(engine, privacy, [edited(c, f"{name} {round_}") for c in order], threads=stub)
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=("a", batch)),
        threading.Thread(target=writer, args=("b", batch[::-1])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    bodies = {body for (body,) in stored(engine, Comment.body).values()}
    assert bodies <= {"a 5", "b 5"} and all(stale(engine).values())
