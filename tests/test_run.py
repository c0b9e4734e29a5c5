"""`civmon run`: the scheduler as a real process against recorded Reddit traffic — stopped with
SIGTERM mid-work and restarted, one scheduler per database, dead holders taken over."""

from __future__ import annotations

import inspect
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w
from sqlalchemy import func, select, text

from monitor.config import CommunitySettings
from monitor.jobs import backing_off
from monitor.records import CommunityRef
from monitor.replay import ReplayServer
from monitor.store import lease
from monitor.store.db import make_engine, transaction
from monitor.store.models import CollectionRun, Comment, Lease, Rollup, RunStatus, Score
from monitor.store.upsert import ensure_community

from conftest import civmon, start_civmon, wait_for
from recordings import LARGE_THREAD, recorded, require_cassettes

FUNNY_THREAD = "TestCommentForest.test_replace__all"


@pytest.fixture(scope="module")
def replay():
    with ReplayServer(require_cassettes()) as server:
        yield server


@pytest.fixture
def workdir(tmp_path, db_url, replay, untrained_model) -> Path:
    config = {
        "database": {"url": db_url},
        "communities": [
            {"platform": "reddit", "name": "announcements", "listings": [], "threads": ["n49rw"]},
            {"platform": "reddit", "name": "funny", "listings": [], "threads": ["3hahrw"]},
            {"platform": "reddit", "name": "askreddit"},
        ],
        "collector": {
            "interval_minutes": 0.05,
            "threads_per_run": 0,
            "submissions_per_run": 100,
            "comments_per_run": 100,
            "more_comments_budget": 1000,
            "retry_wait_seconds": 0.01,
            "request_timeout_seconds": 2.0,
        },
        "schedule": {"score_minutes": 0.05, "metrics_minutes": 0.05},
        "reddit": {"oauth_url": replay.url, "reddit_url": replay.url, "user_agent": "civmon tests (scheduler)"},
        "model": {"name": str(untrained_model), "runtime": "torch", "fallback_to_default": False},
        "privacy": {"key_file": str(tmp_path / "civmon.key")},
    }
    (tmp_path / "civmon.toml").write_text(tomli_w.dumps(config))
    assert run_civmon(tmp_path, "init").returncode == 0
    return tmp_path


PRAW = {"praw_client_id": "civmon-test", "praw_client_secret": "x"}


def run_civmon(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return civmon(cwd, *args, env=PRAW, timeout=600)


def start(cwd: Path) -> subprocess.Popen[str]:
    return start_civmon(cwd, "run", env=PRAW)


def count(db_url: str, query) -> int:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            return connection.scalar(query) or 0
    finally:
        engine.dispose()


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    return output


def test_scheduler_survives_sigterm_and_restart(workdir, db_url):
    expected = recorded("t1", [LARGE_THREAD, FUNNY_THREAD, "TestSubredditListings.test_comments"])
    first = start(workdir)
    wait_for(lambda: count(db_url, select(func.count()).select_from(Comment)) > 0)
    output = stop(first)  # mid-work: collection, scoring or rollups are in flight
    assert "scheduler stopped" in output and "Traceback" not in output
    assert count(db_url, select(func.count()).select_from(Lease)) == 0  # released
    assert count(db_url, text("SELECT count(*) FROM apscheduler_jobs")) == 6  # the schedule is in the database

    second = start(workdir)
    scorable = select(func.count()).select_from(Comment).where(Comment.body.is_not(None))
    scored = select(func.count()).select_from(Score).where(Score.hostility.is_not(None))
    wait_for(
        lambda: (
            count(db_url, select(func.count()).select_from(Comment)) == len(expected)
            and count(db_url, select(func.count()).select_from(Score)) == count(db_url, scorable)
            and count(db_url, select(func.sum(Rollup.comments)).where(Rollup.bucket == "day")) == len(expected)
            and count(db_url, select(func.sum(Rollup.scored)).where(Rollup.bucket == "day")) == count(db_url, scored)
        )
    )
    stop(second)

    engine = make_engine(db_url)
    with engine.connect() as connection:
        stored = set(connection.scalars(select(Comment.platform_id)))
        per_comment = connection.execute(
            select(Score.comment_id, Score.model_version, func.count())
            .group_by(Score.comment_id, Score.model_version)
            .having(func.count() > 1)
        ).all()
        day_scored = connection.scalar(select(func.sum(Rollup.scored)).where(Rollup.bucket == "day"))
        scored = connection.scalar(select(func.count()).select_from(Score).where(Score.hostility.is_not(None)))
        runs = connection.execute(
            select(CollectionRun.job, CollectionRun.community_id, CollectionRun.started_utc, CollectionRun.finished_utc)
        ).all()
    engine.dispose()
    assert stored == set(expected) and per_comment == [] and day_scored == scored
    by_job: dict[tuple, list] = {}
    for job, community, started, finished in runs:
        by_job.setdefault((job, community), []).append((started, finished or started))
    for spans in by_job.values():  # a job never ran twice at the same time
        spans.sort()
        assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


def test_second_scheduler_is_refused_and_dead_holder_taken_over(workdir, db_url):
    config = tomllib.loads((workdir / "civmon.toml").read_text())
    config["communities"] = config["communities"][1:2]  # one small thread keeps this test quick
    (workdir / "civmon.toml").write_text(tomli_w.dumps(config))
    first = start(workdir)
    wait_for(lambda: count(db_url, select(func.count()).select_from(Lease)) == 1)
    refused = run_civmon(workdir, "run")
    stop(first)
    assert refused.returncode == 2
    assert "another civmon scheduler is running" in refused.stderr and "pid" in refused.stderr

    engine = make_engine(db_url)
    lease.acquire(engine, "scheduler", "ghost pid 1 since long ago", now=int(time.time()) - 3600)
    engine.dispose()
    once = run_civmon(workdir, "run", "--once")  # the ghost's heartbeat is an hour old: taken over
    assert once.returncode == 0, once.stderr
    assert count(db_url, select(func.count()).select_from(Lease)) == 0
    assert count(db_url, select(func.count()).select_from(Comment)) > 0


def test_pipeline_jobs_log_their_runs_and_keep_their_failures_in(tmp_path, caplog, monkeypatch):
    """A job logs its run, and a failing one logs the error rather than raising it into the scheduler."""
    from monitor import jobs

    db_url = f"sqlite:///{tmp_path / 'civmon.db'}"
    config = {"database": {"url": db_url}, "privacy": {"key_file": str(tmp_path / "civmon.key")}}
    (tmp_path / "civmon.toml").write_text(tomli_w.dumps(config))
    assert run_civmon(tmp_path, "init").returncode == 0
    assert jobs.metrics_job(str(tmp_path / "civmon.toml"))  # True: it ran without failing
    assert count(db_url, select(func.count()).where(CollectionRun.job == "metrics", CollectionRun.status == "ok")) == 1
    assert not jobs.retention_job(str(tmp_path / "missing.toml"))  # no such configuration: logged, not raised
    assert "retention failed" in caplog.text

    def broken(*_: object) -> None:
        raise RuntimeError("the rollups broke")

    monkeypatch.setattr(jobs, "run_metrics", broken)
    assert not jobs.metrics_job(str(tmp_path / "civmon.toml"))  # fails mid-run: the run log says so, the caller goes on
    assert "metrics failed" in caplog.text
    engine = make_engine(db_url)
    with engine.connect() as connection:
        failed = CollectionRun.job == "metrics", CollectionRun.status == "failed"
        error = connection.scalar(select(CollectionRun.error).where(*failed))
    engine.dispose()
    assert error is not None and "the rollups broke" in error
    assert inspect.signature(jobs.metrics_job).parameters.keys() == {"config"}  # what the scheduler passes


def test_a_configuration_edited_while_running_is_one_line_of_what_to_do_not_a_traceback(tmp_path, caplog):
    from monitor import jobs

    toml = tmp_path / "civmon.toml"
    config = {"database": {"url": f"sqlite:///{tmp_path / 'civmon.db'}"}, "privacy": {"key_file": str(tmp_path / "k")}}
    toml.write_text(tomli_w.dumps(config))  # reddit/gone is no longer configured
    assert not jobs.collect_job(str(toml), "reddit/gone")
    toml.write_text('[database]\nurl = "sqlite:///civmon.db\n')  # a quote forgotten
    assert not jobs.metrics_job(str(toml))
    failures = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.exc_info for r in failures] == [None, None]  # no traceback, every interval, for a user's edit
    assert "reddit/gone is no longer in the configuration" in failures[0].getMessage()
    assert "restart `civmon run`" in failures[0].getMessage()
    assert "metrics failed" in failures[1].getMessage() and "civmon.toml" in failures[1].getMessage()


def test_a_failing_community_backs_off_whatever_the_case_its_name_is_stored_in(engine):
    """A dump stored r/askhistorians before the collector's AskHistorians ran: one community, one back-off."""
    stored = ensure_community(engine, CommunityRef("reddit", "askhistorians"))
    configured = CommunitySettings(platform="reddit", name="AskHistorians")
    with transaction(engine) as session:
        session.add_all(
            CollectionRun(job="collect", community_id=stored, started_utc=1_000 * i, status=RunStatus.FAILED)
            for i in range(1, 4)
        )
    # three failures in a row: wait 4 intervals after the last one (3,000 s)
    assert backing_off(engine, configured, interval=60, now=3_000 + 239)
    assert not backing_off(engine, configured, interval=60, now=3_000 + 241)


def test_run_once_exits_1_naming_the_jobs_that_failed(workdir):
    """For cron: a pass whose collection failed (Reddit unreachable) must not exit 0 as if all went well."""
    config = tomllib.loads((workdir / "civmon.toml").read_text())
    config["communities"] = config["communities"][1:2]
    config["reddit"] |= {"oauth_url": "http://127.0.0.1:9", "reddit_url": "http://127.0.0.1:9"}  # nothing listens
    (workdir / "civmon.toml").write_text(tomli_w.dumps(config))
    once = run_civmon(workdir, "run", "--once")
    assert once.returncode == 1, once.stderr
    assert "failed: collect:reddit/funny;" in once.stdout and "Traceback" not in once.stderr
