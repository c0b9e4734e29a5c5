"""The Reddit collector end to end: the real praw client against recorded reddit.com traffic
served on loopback, writing to real SQLite and PostgreSQL databases."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from monitor.config import Settings
from monitor.records import ItemState
from monitor.replay import BAD_CLIENT_ID, FaultPlan, ReplayServer
from monitor.sources.collect import collect
from monitor.sources.reddit_records import strip_prefix
from monitor.store.models import CollectionRun, Comment, Community, RunStatus, Thread

from conftest import TEST_KEY, refuse_comment_inserts
from recordings import LARGE_THREAD, recorded, require_cassettes

TIMEOUT_S = 1.0  # the collector's HTTP timeout in these tests; injected timeouts hold longer
FUNNY_THREAD = "TestCommentForest.test_replace__all"  # 3hahrw


@pytest.fixture(scope="module")
def cassettes() -> list[Path]:
    return require_cassettes()


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("praw_client_id", "civmon-test")
    monkeypatch.setenv("praw_client_secret", "not-a-secret")
    monkeypatch.setenv("CIVMON_PSEUDONYM_KEY", TEST_KEY.decode())


def config(
    server: ReplayServer, db_url: str, tmp_path: Path, communities: list[dict[str, Any]], **collector: Any
) -> dict[str, Any]:
    return {
        "database": {"url": db_url},
        "communities": communities,
        "reddit": {"oauth_url": server.url, "reddit_url": server.url, "user_agent": "civmon tests (replay)"},
        "privacy": {"key_file": str(tmp_path / "civmon.key")},
        "collector": {
            "retry_wait_seconds": 0.01,
            "request_timeout_seconds": TIMEOUT_S,
            "more_comments_budget": 1000,
            "active_window_hours": 1e6,
            **collector,
        },
    }


def threads_community(*thread_ids: str) -> list[dict[str, Any]]:
    # The recordings hold these trees but not their subreddits' listings: pin the threads, read no listings.
    return [{"platform": "reddit", "name": "announcements", "listings": [], "threads": list(thread_ids)}]


def stored_comments(engine: Engine) -> dict[str, Any]:
    with Session(engine) as session:
        rows = session.execute(select(Comment, Thread.platform_id.label("thread")).join(Thread)).all()
        assert session.scalar(select(func.count()).select_from(Comment)) == len({r.Comment.platform_id for r in rows})
    return {r.Comment.platform_id: r for r in rows}


def assert_same_as_recording(stored: dict[str, Any], expected: dict[str, dict[str, Any]]) -> None:
    assert set(stored) == set(expected), (len(stored), len(expected))
    for comment_id, item in expected.items():
        row = stored[comment_id]
        assert row.Comment.parent_platform_id == strip_prefix(item["parent_id"])
        assert row.thread == strip_prefix(item["link_id"])


def test_subreddit_listings(cassettes, engine, db_url, tmp_path):
    """New submissions and new comments of r/askreddit, then a second pass that finds nothing new."""
    with ReplayServer(cassettes) as server:
        # One recorded page each (100 items): the first pass takes the newest page and sets its mark.
        settings = Settings(
            **config(
                server,
                db_url,
                tmp_path,
                [{"platform": "reddit", "name": "askreddit"}],
                threads_per_run=0,
                submissions_per_run=100,
                comments_per_run=100,
            )
        )
        [first] = collect(settings, engine)
        [second] = collect(settings, engine)
        assert server.misses == []
    expected = recorded("t1", ["TestSubredditListings.test_comments"])
    assert first.status == RunStatus.OK, first
    assert first.counts.new == len(expected) == 100
    assert_same_as_recording(stored_comments(engine), expected)
    with engine.connect() as connection:
        submissions = set(connection.scalars(select(Thread.platform_id).where(Thread.created_utc.is_not(None))))
    assert submissions == set(recorded("t3", ["TestSubredditListings.test_new"]))
    assert (second.counts.new, second.counts.updated) == (0, 0)


def test_large_thread_is_complete(cassettes, engine, db_url, tmp_path, capsys):
    """n49rw: every comment behind 232 'load more' and 3 'continue this thread' links, once, with its parent."""
    with ReplayServer(cassettes) as server:
        settings = Settings(**config(server, db_url, tmp_path, threads_community("n49rw")))
        [outcome] = collect(settings, engine)
        requests = server.request_count
        assert server.misses == []
    expected = recorded("t1", [LARGE_THREAD])
    assert outcome.status == RunStatus.OK, outcome
    stored = stored_comments(engine)
    assert len(expected) == 1428
    assert_same_as_recording(stored, expected)
    deleted = {i for i, item in expected.items() if item["body"] == "[deleted]"}
    assert {i for i, r in stored.items() if r.Comment.state == ItemState.DELETED} == deleted
    assert all(stored[i].Comment.body is None for i in deleted)
    edited = {i for i, item in expected.items() if item.get("edited")}
    assert {i for i, r in stored.items() if r.Comment.edited_utc} == edited
    assert all(r.Comment.depth is not None for r in stored.values())
    with capsys.disabled():
        print(
            f"\nlarge thread: {requests} requests for {len(stored)} comments = "
            f"{100 * requests / len(stored):.1f} requests per 100 comments"
        )


def test_faults_lose_nothing(cassettes, engine, db_url, tmp_path, capsys):
    """429s with and without retry headers, 5xx, Cloudflare 52x, resets, timeouts and invalid JSON
    at random points: the stored set is still exactly the recording's."""
    faults = FaultPlan(seed=7, rate=0.2, client_timeout=TIMEOUT_S)
    with ReplayServer(cassettes, faults) as server:
        settings = Settings(
            **config(server, db_url, tmp_path, threads_community("n49rw", "3hahrw"), request_budget=2000)
        )
        [outcome] = collect(settings, engine)
        injected = server.faults_injected
        assert server.misses == []
    assert outcome.status == RunStatus.OK, outcome
    assert len(injected) >= 8 and sum(injected.values()) >= 40, injected
    assert_same_as_recording(stored_comments(engine), recorded("t1", [LARGE_THREAD, FUNNY_THREAD]))
    with capsys.disabled():
        print(f"\nfaults injected: {dict(sorted(injected.items()))}; requests {outcome.counts.requests}")


def test_killed_collector_resumes_without_loss_or_duplicates(cassettes, engine, db_url, tmp_path, capsys):
    """SIGKILL the real `civmon collect` process several times mid-run (with faults too), then let it finish."""
    faults = FaultPlan(seed=3, rate=0.1, client_timeout=TIMEOUT_S)
    rng = random.Random(11)
    communities = [*threads_community("n49rw", "3hahrw"), {"platform": "reddit", "name": "askreddit"}]
    with ReplayServer(cassettes, faults) as server:
        settings = config(
            server,
            db_url,
            tmp_path,
            communities,
            request_budget=3000,
            threads_per_run=0,
            submissions_per_run=100,
            comments_per_run=100,
        )
        toml = tmp_path / "civmon.toml"
        toml.write_text(tomli_w.dumps(settings))
        env = {**os.environ, "CIVMON_CONFIG": str(toml), "COLUMNS": "200"}
        kills = 0
        for _ in range(4):
            process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "collect"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            time.sleep(rng.uniform(1.5, 4.0))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.communicate()
        final = subprocess.run(
            [sys.executable, "-m", "monitor", "collect"], env=env, capture_output=True, text=True, timeout=600
        )
        assert server.misses == []
    assert final.returncode == 0, final.stderr
    assert kills >= 2, "the collector finished before it could be killed: the test proved nothing"
    expected = recorded("t1", [LARGE_THREAD, FUNNY_THREAD, "TestSubredditListings.test_comments"])
    assert_same_as_recording(stored_comments(engine), expected)
    with engine.connect() as connection:
        runs = connection.execute(select(CollectionRun.status, CollectionRun.error)).all()
    interrupted = [r for r in runs if r.error and "interrupted" in r.error]
    assert len(interrupted) >= kills - 1  # each kill leaves a run that the next start marks as interrupted
    with capsys.disabled():
        print(f"\nkilled {kills} times; {len(expected)} comments stored once each; runs logged: {len(runs)}")


def test_a_collection_stopped_by_sigterm_says_so_in_the_run_log(cassettes, engine, db_url, tmp_path):
    """`timeout` or systemd stopping `civmon collect`: the run used to stay 'running' until the next collection."""
    with ReplayServer(cassettes, FaultPlan(seed=5, rate=0.2, kinds=("timeout",), client_timeout=TIMEOUT_S)) as server:
        toml = tmp_path / "civmon.toml"
        toml.write_text(tomli_w.dumps(config(server, db_url, tmp_path, threads_community("n49rw"))))
        env = {**os.environ, "CIVMON_CONFIG": str(toml)}
        process = subprocess.Popen([sys.executable, "-m", "monitor", "collect"], env=env, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while server.request_count < 3 and time.monotonic() < deadline:  # collecting, not starting up
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    with engine.connect() as connection:
        [(status, error)] = connection.execute(select(CollectionRun.status, CollectionRun.error)).all()
    assert status == RunStatus.FAILED and "stopped mid-run" in error


def test_answers_that_are_not_json_are_named_so(cassettes, engine, db_url, tmp_path):
    with ReplayServer(cassettes, FaultPlan(seed=1, rate=1.0, kinds=("bad-json",))) as server:
        settings = Settings(**config(server, db_url, tmp_path, threads_community("2gmzqe"), retry_attempts=2))
        [outcome] = collect(settings, engine)
    assert outcome.status == RunStatus.FAILED
    assert "not JSON" in outcome.failure and "next one tries again" in outcome.failure  # not 'received 200 HTTP...'


def test_a_thread_past_the_more_comments_budget_says_how_to_read_the_rest(cassettes, engine, db_url, tmp_path):
    with ReplayServer(cassettes) as server:
        settings = Settings(**config(server, db_url, tmp_path, threads_community("n49rw"), more_comments_budget=4))
        [outcome] = collect(settings, engine)
    assert outcome.status == RunStatus.PARTIAL
    # not 'left for the next run': each run expands the same first four
    assert "not expanded within [collector] more_comments_budget (4); raise it" in outcome.counts.errors[0]


def test_unavailable_subreddit_is_skipped_and_others_carry_on(cassettes, engine, db_url, tmp_path):
    communities = [{"platform": "reddit", "name": "nosuchsubreddit"}, *threads_community("2gmzqe")]
    with ReplayServer(cassettes) as server:
        settings = Settings(**config(server, db_url, tmp_path, communities))
        missing, fine = collect(settings, engine)
    assert missing.status == RunStatus.FAILED and "banned or does not exist" in missing.failure
    assert fine.status == RunStatus.OK and fine.counts.new == 2
    with engine.connect() as connection:
        logged = connection.execute(
            select(Community.name, CollectionRun.status, CollectionRun.error).join(Community)
        ).all()
    assert ("nosuchsubreddit", RunStatus.FAILED) in {(r.name, r.status) for r in logged}
    assert any("does not exist" in (r.error or "") for r in logged)


def test_bad_credentials_are_reported(cassettes, engine, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("praw_client_id", BAD_CLIENT_ID)
    with ReplayServer(cassettes) as server:
        settings = Settings(**config(server, db_url, tmp_path, threads_community("2gmzqe")))
        [outcome] = collect(settings, engine)
    assert outcome.status == RunStatus.FAILED
    assert "refused the credentials" in outcome.failure and "praw_client_id" in outcome.failure


def test_request_budget_is_never_exceeded(cassettes, engine, db_url, tmp_path):
    with ReplayServer(cassettes) as server:
        settings = Settings(**config(server, db_url, tmp_path, threads_community("n49rw"), request_budget=50))
        [outcome] = collect(settings, engine)
        assert server.request_count <= 50
    assert outcome.status == RunStatus.PARTIAL and outcome.counts.requests == 50
    assert "budget" in outcome.counts.errors[0]


def test_a_write_the_database_refuses_is_reported_without_the_rows(cassettes, engine, db_url, tmp_path, caplog):
    """SQLAlchemy's text of a failed write quotes every row (bodies, pseudonyms): the outcome, the run log and
    the log name the failure's class and first line only."""
    refuse_comment_inserts(engine)
    with ReplayServer(cassettes) as server:
        settings = Settings(
            **config(server, db_url, tmp_path, [{"platform": "reddit", "name": "askreddit"}], threads_per_run=0)
        )
        [outcome] = collect(settings, engine)
    assert outcome.status == RunStatus.FAILED and "refused" in outcome.failure
    with engine.connect() as connection:
        stored = connection.scalar(select(CollectionRun.error))
    shown = "\n".join([outcome.failure, stored, *caplog.messages])
    assert "INSERT" not in shown and "parameters" not in shown and "refused" in stored
    bodies = [c["body"] for c in recorded("t1", ["TestSubredditListings.test_comments"]).values()]
    assert not [b for b in bodies if len(b) > 20 and b in shown]
