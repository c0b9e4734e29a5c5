"""The Hacker News collector against a local HN API: whole trees, states, text, retries, budget."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from monitor.config import Settings
from monitor.records import ItemState
from monitor.sources.collect import collect
from monitor.sources.hackernews import html_to_text
from monitor.store.models import CollectionRun, Comment, RunStatus, Thread

from hn_fixture import ITEMS, HackerNewsFixture


@pytest.fixture
def hn():
    with HackerNewsFixture() as fixture:
        yield fixture


def settings(url: str, db_url: str, key_file, **collector) -> Settings:
    return Settings(
        database={"url": db_url},
        communities=[{"platform": "hackernews", "name": "top"}],
        hackernews={"api_url": url},
        privacy={"key_file": key_file, "pseudonymise_authors": False},
        collector={"retry_wait_seconds": 0, **collector},
    )


def test_collects_whole_trees_with_structure_and_states(hn, engine, db_url, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        [outcome] = collect(settings(hn.url, db_url, tmp_path / "k"), engine)
    assert outcome.status == RunStatus.OK, outcome
    assert (outcome.counts.new, outcome.counts.deleted) == (5, 0)
    with engine.connect() as connection:
        rows = {r.platform_id: r for r in connection.execute(select(Comment))}
        titles = set(connection.scalars(select(Thread.title)))
        run = connection.execute(select(CollectionRun)).one()
    assert titles == {"Show HN: a civility monitor", "Ask HN: quiet story"}
    assert {k: (r.parent_platform_id, r.depth) for k, r in rows.items()} == {
        "101": ("100", 0),
        "102": ("100", 0),
        "103": ("100", 0),
        "104": ("101", 1),
        "105": ("104", 2),
    }
    assert rows["102"].state == ItemState.DELETED and rows["102"].body is None
    assert rows["103"].state == ItemState.REMOVED and rows["103"].author is None
    assert rows["101"].body == "Nice work.\n\nDoes it handle sarcasm? It's hard."
    assert rows["104"].permalink == "https://news.ycombinator.com/item?id=104"
    assert hn.requests["/v0/item/104.json"] == 2  # the 503 was retried
    assert hn.requests["/v0/item/105.json"] == 2 and rows["105"].body == "Thanks!"  # so was the cut-off answer
    assert any(m.startswith("broken JSON (HTTP 200, ") for m in caplog.messages)  # not a bare 'HTTP 200 ... failed'
    assert (run.status, run.items_new, run.requests) == (RunStatus.OK, 5, outcome.counts.requests)


def test_second_run_changes_nothing(hn, engine, db_url, tmp_path):
    config = settings(hn.url, db_url, tmp_path / "k")
    collect(config, engine)
    [again] = collect(config, engine)
    assert (again.counts.new, again.counts.updated, again.counts.deleted) == (0, 0, 0)


def test_request_budget_stops_the_run_and_keeps_what_was_read(hn, engine, db_url, tmp_path):
    [outcome] = collect(settings(hn.url, db_url, tmp_path / "k", request_budget=3), engine)
    assert outcome.status == RunStatus.PARTIAL
    assert outcome.counts.requests == 3 and "budget" in outcome.counts.errors[0]


def test_stored_feed_stories_wait_their_turn_and_do_not_starve_the_rest(hn, engine, db_url, tmp_path):
    """Read again ahead of every other story, the feed's stored stories spent each run's budget: the feed's later
    stories and the older threads were never read."""
    collect(settings(hn.url, db_url, tmp_path / "k"), engine)
    assert hn.requests["/v0/item/100.json"] == 1
    [again] = collect(settings(hn.url, db_url, tmp_path / "k", threads_per_run=0), engine)  # no thread is due
    assert again.status == RunStatus.OK and hn.requests["/v0/item/100.json"] == 1  # stored: not read as new
    assert hn.requests["/v0/item/999.json"] == 2  # never stored (the API returns null): new again


def test_unreachable_api_fails_the_community_cleanly(engine, db_url, tmp_path):
    config = settings("http://127.0.0.1:9/v0", db_url, tmp_path / "k", retry_attempts=1)
    [outcome] = collect(config, engine)
    assert outcome.status == RunStatus.FAILED and "Connection refused" in outcome.failure


def test_html_to_text():
    assert html_to_text("a &amp; b<p>c <code>d</code>") == "a & b\n\nc d"
    assert html_to_text(None) is None
    assert ITEMS[101]["text"].startswith("Nice")


def test_missing_reddit_credentials_fail_only_reddit(hn, engine, db_url, tmp_path, monkeypatch):
    monkeypatch.delenv("praw_client_id", raising=False)
    monkeypatch.delenv("praw_client_secret", raising=False)
    config = settings(hn.url, db_url, tmp_path / "k").model_dump()
    config["communities"].insert(0, {"platform": "reddit", "name": "AskHistorians"})
    reddit, hackernews = collect(Settings(**config), engine)
    assert reddit.status == RunStatus.FAILED and "client_id and client_secret not set" in reddit.failure
    assert "praw_client_id" in reddit.failure
    assert hackernews.status == RunStatus.OK and hackernews.counts.new == 5
