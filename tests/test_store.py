"""Idempotent bulk upserts, edits, deletions and privacy, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest
from sqlalchemy import Engine, func, select, text, update

from monitor.config import PrivacySettings
from monitor.errors import CivmonError
from monitor.privacy import Pseudonymiser
from monitor.records import ItemState
from monitor.store import db, schema
from monitor.store.db import transaction
from monitor.store.models import Comment, ModelVersion, Score, Thread
from monitor.store.status import community_status
from monitor.store.upsert import Writer, body_hash

from records import COMMUNITY, comments, edited, gone, thread

CONTENT_COLUMNS = [c for c in Comment.__table__.c.keys() if c != "last_seen_utc"]


def write(engine: Engine, privacy: PrivacySettings, pseudonymiser: Pseudonymiser, batch, threads=None):
    with transaction(engine) as session:
        return Writer(session, privacy, pseudonymiser).write(COMMUNITY, threads or [thread()], batch)


def snapshot(engine: Engine) -> list[tuple]:
    columns = [Comment.__table__.c[name] for name in CONTENT_COLUMNS]
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(*columns).order_by(Comment.platform_id))]


def add_score(engine: Engine, platform_id: str) -> None:
    with transaction(engine) as session:
        session.merge(ModelVersion(version="m1", name="test model", created_utc=0))
        comment_id = session.scalars(select(Comment.id).where(Comment.platform_id == platform_id)).one()
        session.add(Score(comment_id=comment_id, model_version="m1", hostility=0.1, scored_utc=0))


def test_same_batch_twice_changes_nothing(engine, privacy, pseudonymiser):
    batch = comments(50)
    first = write(engine, privacy, pseudonymiser, batch)
    before = snapshot(engine)
    second = write(engine, privacy, pseudonymiser, batch)

    assert (first.new, first.updated, first.deleted) == (50, 0, 0)
    assert (second.new, second.updated, second.deleted, second.unchanged) == (0, 0, 0, 50)
    assert snapshot(engine) == before
    assert len(before) == 50
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Thread)) == 1


def test_structure_and_pseudonyms_are_stored(engine, privacy, pseudonymiser):
    write(engine, privacy, pseudonymiser, comments(3))
    with engine.connect() as connection:
        rows = connection.execute(
            select(Comment.platform_id, Comment.parent_platform_id, Comment.depth, Comment.author, Thread.platform_id)
            .join(Thread, Thread.id == Comment.thread_id)
            .order_by(Comment.platform_id)
        ).all()
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("c0", "t1", 0, "t1"),
        ("c1", "c0", 1, "t1"),
        ("c2", "c1", 2, "t1"),
    ]
    assert rows[0].author == pseudonymiser.author("reddit", "user0")
    assert all(r.author and not r.author.startswith("user") for r in rows)
    assert Pseudonymiser(b"another key").author("reddit", "user0") != rows[0].author


def test_edit_updates_body_and_marks_scores_stale(engine, privacy, pseudonymiser):
    batch = comments(5)
    write(engine, privacy, pseudonymiser, batch)
    add_score(engine, "c2")
    result = write(
        engine, privacy, pseudonymiser, [*batch[:2], edited(batch[2], "Edited: you are all wrong."), *batch[3:]]
    )

    assert (result.new, result.updated, result.unchanged) == (0, 1, 4)
    with engine.connect() as connection:
        body, digest, edited_utc = connection.execute(
            select(Comment.body, Comment.body_hash, Comment.edited_utc).where(Comment.platform_id == "c2")
        ).one()
        stale = connection.scalar(select(Score.stale))
    assert body == "Edited: you are all wrong." and digest == body_hash(body) and edited_utc is not None
    assert stale is True


def test_platform_score_change_is_not_an_edit(engine, privacy, pseudonymiser):
    batch = comments(2)
    write(engine, privacy, pseudonymiser, batch)
    add_score(engine, "c0")
    result = write(engine, privacy, pseudonymiser, [replace(batch[0], platform_score=99), batch[1]])
    assert (result.updated, result.unchanged) == (0, 2)
    with engine.connect() as connection:
        assert connection.scalar(select(Comment.platform_score).where(Comment.platform_id == "c0")) == 99
        assert connection.scalar(select(Score.stale)) is False


@pytest.mark.parametrize("state", [ItemState.DELETED, ItemState.REMOVED])
def test_deleted_comment_loses_text_by_default(engine, privacy, pseudonymiser, state):
    batch = comments(3)
    write(engine, privacy, pseudonymiser, batch)
    add_score(engine, "c1")
    result = write(engine, privacy, pseudonymiser, [batch[0], gone(batch[1], state), batch[2]])

    assert (result.deleted, result.updated, result.unchanged) == (1, 0, 2)
    with engine.connect() as connection:
        row = connection.execute(
            select(Comment.state, Comment.body, Comment.author).where(Comment.platform_id == "c1")
        ).one()
        assert connection.scalar(select(func.count()).select_from(Score)) == 1  # the score stays
    assert (row.state, row.body, row.author) == (state, None, None)


def test_deleted_comment_keeps_text_when_privacy_allows(engine, tmp_path, pseudonymiser):
    keeping = PrivacySettings(key_file=tmp_path / "k", keep_deleted_content=True)
    batch = comments(2)
    write(engine, keeping, pseudonymiser, batch)
    write(engine, keeping, pseudonymiser, [batch[0], gone(batch[1], ItemState.REMOVED)])
    with engine.connect() as connection:
        row = connection.execute(
            select(Comment.state, Comment.body, Comment.author).where(Comment.platform_id == "c1")
        ).one()
    assert row.state == ItemState.REMOVED
    assert row.body == batch[1].body
    assert row.author == pseudonymiser.author("reddit", batch[1].author)


def test_deleted_thread_loses_text_by_default(engine, privacy, pseudonymiser):
    original = replace(thread(), body="What do you all think?")
    write(engine, privacy, pseudonymiser, [], threads=[original])
    write(
        engine, privacy, pseudonymiser, [], threads=[replace(original, body=None, author=None, state=ItemState.DELETED)]
    )
    with engine.connect() as connection:
        row = connection.execute(select(Thread.state, Thread.body, Thread.author)).one()
    assert (row.state, row.body, row.author) == (ItemState.DELETED, None, None)


def test_comment_first_seen_deleted_is_stored_without_text(engine, privacy, pseudonymiser):
    result = write(engine, privacy, pseudonymiser, [gone(comments(1)[0], ItemState.DELETED)])
    assert result.new == 1
    with engine.connect() as connection:
        assert connection.execute(select(Comment.state, Comment.body)).one() == (ItemState.DELETED, None)


def test_awkward_text_is_stored(engine, privacy, pseudonymiser):
    awkward = {
        "empty": "",
        "nul": "before\x00after",
        "surrogate": "bad \udcff byte",
        "huge": "word " * 40_000,
        "emoji": "thanks 🙏 — “quoted”",
    }
    batch = [replace(c, body=body) for c, body in zip(comments(len(awkward)), awkward.values(), strict=True)]
    assert write(engine, privacy, pseudonymiser, batch).new == len(awkward)
    with engine.connect() as connection:
        bodies = {row.platform_id: row.body for row in connection.execute(select(Comment.platform_id, Comment.body))}
    assert bodies["c0"] == "" and bodies["c1"] == "beforeafter" and bodies["c2"] == "bad ? byte"
    assert len(bodies["c3"]) == 200_000 and bodies["c4"] == awkward["emoji"]


def test_comment_without_its_thread_is_refused(engine, privacy, pseudonymiser):
    with pytest.raises(ValueError, match="threads neither stored nor in the batch"):
        write(engine, privacy, pseudonymiser, comments(2, thread_id="unknown"), threads=[thread()])
    with engine.connect() as connection:  # the whole batch rolled back
        assert connection.scalar(select(func.count()).select_from(Thread)) == 0


def test_status_counts_stored_and_scored(engine, privacy, pseudonymiser):
    write(engine, privacy, pseudonymiser, comments(4))
    add_score(engine, "c0")
    with transaction(engine) as session:
        [row] = community_status(session)
    assert (row.platform, row.name, row.comments, row.scored, row.last_run_status) == (
        "reddit",
        "testcommunity",
        4,
        1,
        None,
    )
    with transaction(engine) as session:
        session.execute(update(Score).values(stale=True))
        [row] = community_status(session)
    assert row.scored == 0


def test_unmigrated_database_is_refused_with_advice(db_url):
    with pytest.raises(CivmonError, match="not initialised") as caught:
        schema.open_store(db_url)
    assert "civmon init" in caught.value.hint


def test_database_from_a_newer_civmon_is_refused(engine, db_url):
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    with pytest.raises(CivmonError, match="newer civmon"):
        schema.open_store(db_url)
    with pytest.raises(CivmonError, match="newer civmon"):  # `civmon init` too: alembic's CommandError before
        schema.upgrade(engine)


@pytest.mark.parametrize("recorded", ["0002", None])
def test_tables_that_are_not_what_the_schema_says_are_a_message_and_stay_as_they_were(engine, recorded):
    """A version row edited or lost, tables kept: the migrations would create what exists ('already exists')."""
    with engine.begin() as connection:
        if recorded:
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": recorded})
        else:
            connection.execute(text("DELETE FROM alembic_version"))
    with pytest.raises(CivmonError, match="does not hold the tables its recorded schema") as caught:
        schema.upgrade(engine)
    assert "backup" in caught.value.hint
    assert schema.current_revision(engine) == recorded  # nothing changed


def test_migration_is_idempotent(engine, db_url):
    before, after = schema.upgrade(engine)
    assert before == after == schema.head_revision()
    schema.open_store(db_url).dispose()


def test_thread_stub_never_overwrites_and_is_filled_in(engine, privacy, pseudonymiser):
    stub = replace(thread(), title="Thread 1", created_utc=None, platform_score=None, num_comments=None)
    write(engine, privacy, pseudonymiser, comments(1), threads=[stub])
    with engine.connect() as connection:
        assert connection.execute(select(Thread.title, Thread.created_utc)).one() == ("Thread 1", None)
    write(engine, privacy, pseudonymiser, [], threads=[thread()])
    write(engine, privacy, pseudonymiser, [], threads=[replace(stub, title=None)])
    with engine.connect() as connection:
        assert connection.execute(select(Thread.title, Thread.created_utc, Thread.platform_score)).one() == (
            "Thread 1",
            thread().created_utc,
            10,
        )


def test_depth_learned_later_is_kept(engine, privacy, pseudonymiser):
    [known] = comments(1)
    write(engine, privacy, pseudonymiser, [replace(known, depth=None)])
    write(engine, privacy, pseudonymiser, [known])
    write(engine, privacy, pseudonymiser, [replace(known, depth=None)])
    with engine.connect() as connection:
        assert connection.scalar(select(Comment.depth)) == 0


def test_database_behind_the_code_is_refused(engine, db_url):
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    with pytest.raises(CivmonError, match="has schema 0001") as caught:
        schema.open_store(db_url)
    assert "civmon init" in caught.value.hint


def test_upgrading_to_skip_reasons_says_why_older_rows_were_not_scored(engine, privacy, pseudonymiser):
    from alembic import command

    write(engine, privacy, pseudonymiser, comments(3))
    config = schema._alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO model_versions (version, name, created_utc) VALUES ('m', 'm', 0)"))
        ids = connection.execute(text("SELECT id FROM comments ORDER BY id")).scalars().all()
        for comment_id, hostility, language in zip(ids, [0.2, None, None], ["en", "de", None], strict=True):
            connection.execute(
                text(
                    "INSERT INTO scores (comment_id, model_version, hostility, language, stale, scored_utc)"
                    " VALUES (:c, 'm', :h, :l, :stale, 0)"
                ),
                {"c": comment_id, "h": hostility, "l": language, "stale": False},
            )
    assert schema.upgrade(engine) == ("0003", schema.head_revision())
    with engine.connect() as connection:
        reasons = connection.execute(select(Score.skip_reason).order_by(Score.comment_id)).scalars().all()
    assert reasons[0] is None and reasons[1] == "not English (language: de)" and "not kept" in reasons[2]


def test_a_database_another_process_holds_says_so(tmp_path, monkeypatch):
    """Not 'check the server is running': SQLite waited its busy timeout behind another writer."""
    url = f"sqlite:///{tmp_path / 'civmon.db'}"
    schema.upgrade(db.make_engine(url))
    holder = sqlite3.connect(tmp_path / "civmon.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_S", 1)
    try:
        with pytest.raises(CivmonError, match="stayed locked by another process") as error:
            db.check_connection(db.make_engine(url))
    finally:
        holder.close()
    assert "other civmon command" in error.value.hint
