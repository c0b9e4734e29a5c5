"""One collection pass over the configured communities, and dump imports: the sources stage's entry points.

Each community runs on its own, logged in the run table: a subreddit that is private
or an API that keeps failing is recorded and skipped, and the others carry on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import prawcore
import requests
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from monitor.config import CommunitySettings, Settings
from monitor.errors import CivmonError
from monitor.privacy import Pseudonymiser, load_pseudonymiser
from monitor.records import CommentRecord, CommunityRef, ThreadRecord
from monitor.sources import hackernews, reddit
from monitor.sources.dumps import ImportReport, dump_format, import_dump
from monitor.sources.http import BudgetExhausted, RequestBudget, RetryPolicy, polite_session
from monitor.sources.reddit_credentials import HOW_TO, credentials_problem
from monitor.sources.sink import CommunitySink
from monitor.stopping import stop_requested
from monitor.store.db import transaction
from monitor.store.models import RunStatus
from monitor.store.runs import RunCounts, failure_text, recorded_run
from monitor.store.upsert import Writer, ensure_community

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    community: str
    status: RunStatus
    counts: RunCounts
    failure: str | None = None


def select_communities(settings: Settings, only: str | None) -> list[CommunitySettings]:
    if only is None:
        return list(settings.communities)
    chosen = [c for c in settings.communities if only in (c.name, c.key)]
    if not chosen:
        known = ", ".join(c.key for c in settings.communities) or "none"
        raise CivmonError(f"no configured community is called {only!r}", f"use one of: {known}")
    return chosen


def collect(settings: Settings, engine: Engine, only: str | None = None) -> list[Outcome]:
    communities = select_communities(settings, only)
    pseudonymiser = load_pseudonymiser(settings.privacy)
    return [collect_community(settings, engine, c, pseudonymiser) for c in communities if not stop_requested()]


def collect_community(
    settings: Settings, engine: Engine, community: CommunitySettings, pseudonymiser: Pseudonymiser
) -> Outcome:
    ref = CommunityRef(community.platform, community.name)
    community_id = ensure_community(engine, ref)
    counts = RunCounts()
    try:
        with recorded_run(engine, "collect", community_id) as counts:
            sink = CommunitySink(engine, settings.privacy, pseudonymiser, ref, community_id, counts)
            _collector(settings, community).collect(sink, counts)
    except EXPECTED_FAILURES as exc:
        log.error("%s: %s", ref.key, exc)
        return Outcome(ref.key, RunStatus.FAILED, counts, str(exc))
    except Exception as exc:  # a bug or a surprise from one community must not stop the others
        # failure_text, not the exception's whole text: SQLAlchemy's quotes the rows (bodies, pseudonyms)
        log.error("%s: collection failed: %s", ref.key, failure_text(exc))
        log.debug("%s: the failure in full", ref.key, exc_info=True)
        return Outcome(ref.key, RunStatus.FAILED, counts, failure_text(exc))
    status = RunStatus.PARTIAL if counts.errors else RunStatus.OK
    log.info(
        "%s: %s, %d new, %d updated, %d deleted, %d requests",
        ref.key,
        status,
        counts.new,
        counts.updated,
        counts.deleted,
        counts.requests,
    )
    return Outcome(ref.key, status, counts)


# Failures the run log explains by themselves: no traceback needed.
EXPECTED_FAILURES = (
    reddit.CommunityUnavailable,
    *reddit.TRANSIENT,
    prawcore.exceptions.PrawcoreException,
    requests.RequestException,
)


def _collector(settings: Settings, community: CommunitySettings) -> reddit.RedditCollector | HackerNewsCollector:
    c = settings.collector
    budget = RequestBudget(c.request_budget)
    policy = RetryPolicy(c.retry_attempts, c.retry_wait_seconds, c.request_timeout_seconds)
    if community.platform == "reddit":
        if reason := credentials_problem(settings.reddit):  # logged as this community's failure; others go on
            raise reddit.CommunityUnavailable(f"{reason}: {HOW_TO.format(site=settings.reddit.site)}")
        return reddit.RedditCollector(reddit.make_reddit(settings.reddit, budget, policy), budget, community, c)
    session = polite_session(budget, policy, settings.reddit.user_agent, pool=hackernews.PARALLEL_REQUESTS)
    return HackerNewsCollector(
        hackernews.HackerNewsClient(settings.hackernews.api_url, session), budget, community.name, settings
    )


class HackerNewsCollector:
    def __init__(
        self, client: hackernews.HackerNewsClient, budget: RequestBudget, feed: str, settings: Settings
    ) -> None:
        self.client = client
        self.budget = budget
        self.feed = feed
        self.settings = settings.collector

    def collect(self, sink: CommunitySink, counts: RunCounts) -> None:
        try:
            for story_id in self._stories(sink):
                if stop_requested():
                    return
                walked = hackernews.walk_story(self.client, story_id)
                if walked is not None:
                    story, comments = walked
                    sink.write([story], comments, refreshed=[str(story_id)])
        except BudgetExhausted as exc:
            counts.errors.append(f"{exc}; the rest waits for the next run")
        finally:
            counts.requests = self.budget.used

    def _stories(self, sink: CommunitySink) -> list[int]:
        """The feed's stories never stored, then stored active ones, least recently read first. A story read once
        waits its turn among the stored ones: read again ahead of them, the feed's stored stories spent each run's
        budget, and the feed's later stories and the older threads were never read."""
        feed = self.client.feed(self.feed)[: self.settings.submissions_per_run]
        known = sink.stored_threads([str(s) for s in feed])
        stored = sink.threads_to_refresh(self.settings.active_window_hours, self.settings.threads_per_run)
        return [*(s for s in feed if str(s) not in known), *map(int, stored)]


def import_dumps(
    settings: Settings, engine: Engine, paths: Sequence[Path], advance: Callable[[Path, int, ImportReport], None]
) -> dict[Path, ImportReport]:
    """Import each file as one logged run; bad lines are reported, never fatal. Every file is checked
    (there, readable, a format civmon reads) before the first is imported."""
    for path in paths:
        if not path.is_file():
            raise CivmonError(f"{path} is not a file", "give the paths of .ndjson, .jsonl or .zst dump files")
        dump_format(path)
    pseudonymiser = load_pseudonymiser(settings.privacy)
    return {path: _import_file(settings, engine, pseudonymiser, path, advance) for path in paths}


def _import_file(
    settings: Settings,
    engine: Engine,
    pseudonymiser: Pseudonymiser,
    path: Path,
    advance: Callable[[Path, int, ImportReport], None],
) -> ImportReport:
    with recorded_run(engine, f"import {path.name}", None) as counts:

        def write(ref: CommunityRef, threads: list[ThreadRecord], comments: list[CommentRecord]) -> None:
            with transaction(engine) as session:
                result = Writer(session, settings.privacy, pseudonymiser).write(ref, threads, comments)
            counts.new += result.new
            counts.updated += result.updated
            counts.deleted += result.deleted

        try:
            report = import_dump(path, write, lambda position, rep: advance(path, position, rep))
        except SQLAlchemyError as exc:  # its own text quotes the batch's rows: bodies, pseudonyms
            raise CivmonError(
                f"{path}: the database refused a batch ({failure_text(exc)})",
                "the batches before it are stored; once the database takes writes again, import the file again: "
                "nothing is stored twice",
            ) from None
        counts.errors.extend(f"line {b.number}: {b.reason}" for b in report.bad[:20])
        if len(report.bad) > 20:
            counts.errors.append(f"... {len(report.bad) - 20} more bad lines")
    return report
