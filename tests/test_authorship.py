"""One keying of authors per store: user names or one key's pseudonyms, never a mix; names turned into
pseudonyms in place. On SQLite and PostgreSQL, with the real Writer and migrations."""

from __future__ import annotations

import re
import threading
from dataclasses import replace

import pytest
from alembic import command
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from monitor.config import PrivacySettings
from monitor.errors import CivmonError
from monitor.privacy import USER_NAMES, Pseudonymiser
from monitor.records import CommunityRef, ItemState
from monitor.store import authorship, schema
from monitor.store.authorship import MIXED, UNRECORDED_KEY, keying_problem, pseudonymise_stored, stored_keying
from monitor.store.db import transaction
from monitor.store.models import Comment, Thread
from monitor.store.upsert import Writer

from conftest import TEST_KEY, civmon
from records import COMMUNITY, comments, gone, thread

NAMES = Pseudonymiser(None)
OTHER_KEY = Pseudonymiser(bytes(reversed(TEST_KEY)))
SECOND = CommunityRef("reddit", "secondcommunity")
PSEUDONYM = re.compile("[0-9a-f]{16}")


def write(engine: Engine, privacy, pseudonymiser: Pseudonymiser, first: int = 0, ref=COMMUNITY) -> None:
    batch = comments(5, first=first)
    batch[-1] = gone(batch[-1], ItemState.DELETED)  # a deleted author stays empty whatever the keying
    with transaction(engine) as session:
        Writer(session, privacy, pseudonymiser).write(ref, [thread()], batch)


def authors(engine: Engine) -> list[str | None]:
    with engine.connect() as connection:
        found = connection.execute(select(Thread.author).union_all(select(Comment.author))).scalars().all()
    return sorted(found, key=str)


def keying(engine: Engine) -> str | None:
    with transaction(engine) as session:
        return stored_keying(session)


def test_the_first_writer_records_its_keying_and_no_other_may_write(engine, privacy, pseudonymiser):
    write(engine, privacy, pseudonymiser)
    assert keying(engine) == pseudonymiser.keying != OTHER_KEY.keying
    before = authors(engine)
    with pytest.raises(CivmonError, match="made with another key") as other:
        write(engine, privacy, OTHER_KEY, first=10)
    assert "a new key needs a new database" in other.value.hint
    with pytest.raises(CivmonError, match="would store user names beside them"):
        write(engine, privacy, NAMES, first=10)
    assert authors(engine) == before  # refused before a row was written
    assert keying_problem(engine, OTHER_KEY) is not None and keying_problem(engine, pseudonymiser) is None


def test_user_names_become_the_pseudonyms_the_key_would_have_made(engine, privacy, pseudonymiser, monkeypatch):
    write(engine, privacy, NAMES)
    write(engine, privacy, NAMES, ref=SECOND)
    names = authors(engine)
    assert keying(engine) == USER_NAMES and "user1" in names
    with pytest.raises(CivmonError, match="holds authors as user names") as refused:
        write(engine, privacy, pseudonymiser, first=10)
    assert "civmon pseudonymise" in refused.value.hint

    steps: list[str] = []
    monkeypatch.setattr(authorship, "CHUNK", 2)  # names stream from the database a few at a time
    converted = pseudonymise_stored(engine, pseudonymiser, steps.append)

    assert converted.authors == len({n for n in names if n}) and not converted.already  # one name, one platform
    assert authors(engine) == sorted((pseudonymiser.author("reddit", n) if n else None for n in names), key=str)
    assert [s for s in steps if s.startswith("pseudonymising")] == [
        f"pseudonymising authors: {n} of 5" for n in (2, 4, 5)
    ]
    assert keying(engine) == pseudonymiser.keying
    write(engine, privacy, pseudonymiser, first=10)  # collection resumes, and its authors join the converted ones
    with engine.connect() as connection:
        distinct = connection.scalar(select(func.count(func.distinct(Comment.author))))
    assert distinct == 7  # records.comments' seven users: none counted twice
    assert pseudonymise_stored(engine, pseudonymiser, steps.append).already


def test_pseudonyms_cannot_be_rekeyed_or_made_without_a_key(engine, privacy, pseudonymiser):
    write(engine, privacy, pseudonymiser)
    with pytest.raises(CivmonError, match="another key"):
        pseudonymise_stored(engine, OTHER_KEY, print)
    with pytest.raises(CivmonError, match="no key to pseudonymise with"):
        pseudonymise_stored(engine, NAMES, print)


def as_if_from_0006(engine: Engine) -> None:
    """The store as civmon 0006 left it (no record of its keying), then migrated."""
    downgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE store_facts"))
    schema.upgrade(engine)


def downgrade(engine: Engine) -> None:
    config = schema._alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0006")


def forget_keying(engine: Engine) -> None:
    """As if the store's earlier writers had been a civmon that recorded no keying."""
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM store_facts"))


@pytest.mark.parametrize(
    ("writers", "expected"),
    [([], None), ([NAMES], USER_NAMES), (["key"], UNRECORDED_KEY), ([NAMES, "key"], MIXED)],
    ids=["empty", "names", "pseudonyms", "mixed"],
)
def test_the_migration_tells_names_from_pseudonyms(engine, privacy, pseudonymiser, writers, expected):
    for n, writer in enumerate(writers):
        forget_keying(engine)
        write(engine, privacy, pseudonymiser if writer == "key" else writer, first=10 * n)
    as_if_from_0006(engine)
    assert keying(engine) == expected


def test_a_migrated_store_of_pseudonyms_is_adopted_by_the_first_key(engine, privacy, pseudonymiser):
    write(engine, privacy, OTHER_KEY)
    as_if_from_0006(engine)
    with pytest.raises(CivmonError, match="pseudonymised authors"):
        write(engine, privacy, NAMES, first=10)
    write(engine, privacy, pseudonymiser, first=10)  # the key cannot be known: the first one is taken on trust
    assert keying(engine) == pseudonymiser.keying


def test_a_mixed_store_converts_only_its_user_names(engine, privacy, pseudonymiser):
    write(engine, privacy, NAMES)
    forget_keying(engine)
    write(engine, privacy, pseudonymiser, first=10)
    kept = [a for a in authors(engine) if a and PSEUDONYM.fullmatch(a)]
    as_if_from_0006(engine)
    with pytest.raises(CivmonError, match="both user names and pseudonyms"):
        write(engine, privacy, pseudonymiser, first=20)

    pseudonymise_stored(engine, pseudonymiser, print)

    stored = [a for a in authors(engine) if a]
    assert all(PSEUDONYM.fullmatch(a) for a in stored) and set(kept) <= set(stored)
    assert len(set(stored)) == 8  # user0..user6 and the thread's author: each author's two halves met


REFUSE_COMMENT_UPDATES = {
    "sqlite": ["CREATE TRIGGER refuse BEFORE UPDATE ON comments BEGIN SELECT RAISE(ABORT, 'refused'); END"],
    "postgresql": [
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse BEFORE UPDATE ON comments FOR EACH ROW EXECUTE FUNCTION refuse()",
    ],
}


def test_an_interrupted_conversion_changes_nothing(engine, privacy, pseudonymiser):
    write(engine, privacy, NAMES)
    before = authors(engine)
    with engine.begin() as connection:  # threads are rewritten, then the comments' rewrite fails
        for statement in REFUSE_COMMENT_UPDATES[engine.dialect.name]:
            connection.exec_driver_sql(statement)
    with pytest.raises(DBAPIError, match="refused"):
        pseudonymise_stored(engine, pseudonymiser, print)
    assert authors(engine) == before and keying(engine) == USER_NAMES


def test_the_commands_say_what_to_do(tmp_path, db_url):
    """`civmon init` and `config check` name the mismatch; `civmon pseudonymise` resolves it."""
    (tmp_path / "civmon.toml").write_text("[privacy]\npseudonymise_authors = false\n")
    env = {"CIVMON_DATABASE__URL": db_url}
    assert civmon(tmp_path, "init", env=env).returncode == 0
    engine = schema.open_store(db_url)
    write(engine, PrivacySettings(key_file=tmp_path / "civmon.key", pseudonymise_authors=False), NAMES)
    (tmp_path / "civmon.toml").write_text("")  # pseudonymisation back on, the default

    init = civmon(tmp_path, "init", env=env)
    assert init.returncode == 2 and "civmon pseudonymise" in init.stderr and "Traceback" not in init.stderr
    check = civmon(tmp_path, "config", "check", env=env)
    assert check.returncode == 1 and "holds authors as user names" in check.stdout

    done = civmon(tmp_path, "pseudonymise", env=env)
    assert done.returncode == 0, done.stderr
    assert "5 authors' user names replaced" in done.stdout  # user0..user3 and the thread's author
    assert not {"user1", "op_user"} & set(authors(engine))
    assert civmon(tmp_path, "init", env=env).returncode == 0
    assert "nothing to do" in civmon(tmp_path, "pseudonymise", env=env).stdout
    status = civmon(tmp_path, "status", env=env).stdout
    check_value = keying(engine).removeprefix("hmac-sha256:")
    assert f"authors: keyed-hash pseudonyms (HMAC-SHA256), key check {check_value}" in status
    engine.dispose()


def test_a_downgrade_and_upgrade_keep_the_recorded_key(engine, privacy, pseudonymiser):
    write(engine, privacy, pseudonymiser)
    downgrade(engine)
    schema.upgrade(engine)
    with pytest.raises(CivmonError, match="another key"):  # not 'key not recorded', which any key would adopt
        write(engine, privacy, OTHER_KEY, first=10)


def test_pseudonymise_takes_the_key_for_a_migrated_store_of_pseudonyms(engine, privacy, pseudonymiser):
    write(engine, privacy, pseudonymiser)
    as_if_from_0006(engine)
    assert pseudonymise_stored(engine, pseudonymiser, print).already
    assert keying(engine) == pseudonymiser.keying


def test_a_name_shaped_like_a_pseudonym_but_for_a_line_break_is_a_name(engine, privacy, pseudonymiser):
    """SQLite's regexp is Python's re.search, whose $ matches before a final line break: PostgreSQL's does not."""
    write(engine, privacy, pseudonymiser)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE comments SET author = :a WHERE platform_id = 'c0'"), {"a": "0123456789abcdef\n"}
        )
    as_if_from_0006(engine)
    assert keying(engine) == MIXED


def test_writers_wait_for_a_conversion_and_then_are_refused(engine, privacy, pseudonymiser):
    """A collector still running with user names must not slip a name in while `pseudonymise` runs."""
    write(engine, privacy, NAMES)
    outcome: list[BaseException | None] = []
    # what pseudonymise_stored holds from its start to its commit (SQLite: BEGIN IMMEDIATE, one writer at a time)
    hold = "LOCK TABLE store_facts IN EXCLUSIVE MODE" if engine.dialect.name == "postgresql" else "SELECT 1"
    with engine.connect() as converting:
        converting.execute(text(hold))
        late = threading.Thread(target=lambda: outcome.append(_attempt(engine, privacy)))
        late.start()
        late.join(timeout=3)
        assert late.is_alive()  # waiting for the conversion
        converting.execute(text("UPDATE store_facts SET value = :v"), {"v": pseudonymiser.keying})
        converting.commit()
    late.join(timeout=30)
    assert isinstance(outcome[0], CivmonError) and "holds pseudonymised authors" in outcome[0].message
    assert "late_user" not in authors(engine)


def _attempt(engine: Engine, privacy) -> BaseException | None:
    late = [replace(c, author="late_user") for c in comments(2, first=30)]
    try:
        with transaction(engine) as session:
            Writer(session, privacy, NAMES).write(COMMUNITY, [thread()], late)
    except CivmonError as exc:
        return exc
    return None
