"""API keys in the store (SQLite and PostgreSQL) and the per-key quotas of `civmon serve`."""

from __future__ import annotations

import hashlib
import importlib.util
import time
import uuid

import pytest
from sqlalchemy import Engine, inspect, select

from monitor.api.quota import Quotas
from monitor.errors import CivmonError
from monitor.store import schema
from monitor.store.db import make_engine, transaction
from monitor.store.keys import KeyInfo, create_key, find_key, list_keys, revoke_key
from monitor.store.models import ApiKey

from conftest import migrate, schema_drift

REDIS_CLIENT = importlib.util.find_spec("redis") is not None


def create(engine: Engine, name: str, qps: float = 1.0) -> str:
    with transaction(engine) as session:
        return create_key(session, name, qps)


def find(engine: Engine, secret: str) -> KeyInfo | None:
    with transaction(engine) as session:
        return find_key(session, secret)


def test_keys_are_created_listed_found_and_revoked(engine):
    before = int(time.time())
    bot, research = create(engine, "moderation-bot", 2.5), create(engine, "team.research_1", 0.5)
    assert bot.startswith("civmon_") and len(bot) > 40 and bot != research

    found = find(engine, bot)
    assert (found.name, found.qps, found.revoked_utc) == ("moderation-bot", 2.5, None)
    assert before <= found.created_utc <= time.time()
    assert find(engine, research).name == "team.research_1"

    with transaction(engine) as session:
        revoke_key(session, "moderation-bot")
    assert find(engine, bot) is None
    assert find(engine, research) is not None
    with transaction(engine) as session:
        listed = list_keys(session)
    assert [(k.name, k.qps, k.revoked_utc is not None) for k in listed] == [
        ("moderation-bot", 2.5, True),  # kept, for the audit trail
        ("team.research_1", 0.5, False),
    ]


def test_a_key_stores_only_under_the_communities_it_was_created_for(engine):
    with transaction(engine) as session:
        forum = create_key(session, "forum-bot", 1, ["forum-1", "Coral:https://news.example.com/", "forum-1"])
        anywhere = create_key(session, "lab", 1, ["*"])
        scorer = create_key(session, "scorer", 1)
    assert find(engine, forum).communities == ("Coral:https://news.example.com/", "forum-1")
    assert find(engine, forum).may_store("forum-1") and not find(engine, forum).may_store("forum-2")
    assert find(engine, anywhere).may_store("anything at all")
    assert find(engine, scorer).communities == () and not find(engine, scorer).may_store("forum-1")
    with transaction(engine) as session, pytest.raises(CivmonError, match="1 to 256 characters"):
        create_key(session, "bad", 1, ["x" * 257])
    with transaction(engine) as session, pytest.raises(CivmonError, match="control or invisible"):
        create_key(session, "bad", 1, ["forum\n| fake | row", "\x1b[31mred"])


def test_the_secret_is_kept_only_as_its_hash(engine):
    secret = create(engine, "bot")
    with engine.connect() as connection:
        row = connection.execute(select(ApiKey.__table__)).one()
    assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in str(value) for value in row)


@pytest.mark.parametrize("secret", ["", "civmon_", "civmon_not-a-key", "0" * 64])
def test_an_unknown_secret_finds_nothing(engine, secret):
    create(engine, "bot")
    assert find(engine, secret) is None


def test_a_name_taken_is_refused_and_the_transaction_goes_on(engine):
    create(engine, "bot")
    with transaction(engine) as session:
        with pytest.raises(CivmonError, match="'bot' already exists") as caught:
            create_key(session, "bot", 1.0)
        other = create_key(session, "other", 1.0)  # the refusal rolled back its own insert only
    assert "choose another name" in caught.value.hint
    assert find(engine, other).name == "other"


def test_a_revoked_key_keeps_its_name(engine):
    old = create(engine, "bot")
    with transaction(engine) as session:
        revoke_key(session, "bot")
    with pytest.raises(CivmonError, match="revoked key keeps its name"):
        create(engine, "bot")
    assert find(engine, old) is None


@pytest.mark.parametrize("name", ["", "x" * 65, "has space", "naïve", "a/b", "bot\n", "key;drop"])
def test_a_bad_name_is_refused_and_says_what_a_name_is(engine, name):
    with pytest.raises(CivmonError, match="1 to 64 characters, letters, digits") as caught:
        create(engine, name)
    assert repr(name) in caught.value.message and "choose a name like" in caught.value.hint
    with transaction(engine) as session:
        assert list_keys(session) == []


@pytest.mark.parametrize("qps", [0, -1, float("nan"), float("inf"), 1e6 + 1])
def test_a_bad_rate_is_refused_and_says_what_a_rate_is(engine, qps):
    with pytest.raises(CivmonError, match="above 0 and at most 1000000 requests a second") as caught:
        create(engine, "bot", qps)
    assert "e.g. 1" in caught.value.hint
    with transaction(engine) as session:
        assert list_keys(session) == []


def test_the_widest_rates_are_accepted(engine):
    create(engine, "slow", 1e-6)
    create(engine, "fast", 1e6)
    with transaction(engine) as session:
        assert [k.qps for k in list_keys(session)] == [1e6, 1e-6]


def test_revoking_an_unknown_or_revoked_key_names_it(engine):
    with transaction(engine) as session, pytest.raises(CivmonError, match="no API key named 'ghost'") as caught:
        revoke_key(session, "ghost")
    assert "civmon keys list" in caught.value.hint
    create(engine, "bot")
    with transaction(engine) as session:
        revoke_key(session, "bot")
    with transaction(engine) as session, pytest.raises(CivmonError, match="'bot' was already revoked, on 20"):
        revoke_key(session, "bot")


def test_a_store_at_0004_upgrades_to_api_keys_and_back(db_url):
    engine = make_engine(db_url)
    migrate(engine, "0004")
    assert "api_keys" not in inspect(engine).get_table_names()

    assert schema.upgrade(engine) == ("0004", schema.head_revision())
    assert find(engine, create(engine, "bot")).name == "bot"
    assert schema_drift(engine, "api_keys") == []  # the migration builds the table the model describes

    migrate(engine, "0004", down=True)
    assert "api_keys" not in inspect(engine).get_table_names()
    engine.dispose()


def test_a_key_makes_its_rate_then_waits():
    quotas = Quotas()
    assert [quotas.check("bot", 2) for _ in range(2)] == [None, None]
    assert quotas.check("bot", 2) == 1  # whole seconds, for Retry-After
    time.sleep(1.05)
    assert quotas.check("bot", 2) is None


def test_keys_have_quotas_of_their_own():
    quotas = Quotas()
    assert quotas.check("bot", 1) is None and quotas.check("bot", 1) == 1
    assert quotas.check("other", 1) is None
    assert quotas.check("bot", 1) == 1


def test_a_request_both_windows_refuse_waits_for_the_longer():
    quotas = Quotas()
    assert quotas.check("half", 0.5, cost=30) is None  # a minute's 30 texts at once
    assert quotas.check("half", 0.5) >= 58  # the second's window frees in 1 s, the minute's in about 60


def test_a_refused_request_counts_nowhere():
    quotas = Quotas()
    assert quotas.check("bot", 1, cost=60) is None and quotas.check("bot", 1) is not None
    time.sleep(1.05)
    assert quotas.check("bot", 1) is not None  # the minute is spent; the refusal did not count against the second


def test_a_fractional_rate_holds_over_the_minute():
    """At a request a minute the second is free again after a second, the minute is not."""
    quotas = Quotas()
    assert quotas.check("slow", 1 / 60) is None
    time.sleep(1.05)
    assert 57 <= quotas.check("slow", 1 / 60) <= 59


@pytest.mark.skipif(not REDIS_CLIENT, reason="the redis package is not installed (Quotas on redis:// need it)")
def test_quotas_on_redis_are_shared_by_processes():
    try:
        first, second = Quotas("redis://127.0.0.1:6379"), Quotas("redis://127.0.0.1:6379")
    except CivmonError as exc:
        pytest.skip(f"no Redis server: {exc.message}")
    key = f"bot-{uuid.uuid4().hex}"  # the server outlives the test
    assert first.check(key, 2) is None and second.check(key, 2) is None
    assert first.check(key, 2) == 1 and second.check(key, 2) == 1


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("redis://:hunter2@127.0.0.1:1/0?password=hunter2", "redis://127.0.0.1:1/0"),
        ("mongo://u:hunter2@h", "mongo://h"),
    ],
)
def test_a_storage_that_cannot_count_is_a_message_without_its_password(uri, shown):
    """Port 1: no Redis answers there (or, without the redis package, none is tried)."""
    with pytest.raises(CivmonError, match=f"civmon cannot .*{shown}") as caught:
        Quotas(uri)
    assert "hunter2" not in str(caught.value)
