"""Every database read the dashboard makes, and its one write (acknowledging an alert).

Aggregates come from the rollup tables through `monitor.metrics` (rollups.period / series,
dynamics); comment-level reads (the threads and comments behind a change, a thread's tree)
are parameterised SQLAlchemy statements limited to one community and period (indexed).
Results are cached for TTL seconds per argument set, so a page full of widgets does not
repeat a query; the engine is read-only (SQLite query_only, PostgreSQL read-only transactions).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import streamlit as st
from sqlalchemy import Engine, Select, and_, case, func, select
from sqlalchemy.orm import Session

from monitor.metrics import alerts as alert_metrics
from monitor.metrics import dynamics, rollups
from monitor.metrics.definitions import shown
from monitor.metrics.job import current_version
from monitor.metrics.rollups import BucketStats
from monitor.records import original_url
from monitor.store import schema
from monitor.store.db import make_engine
from monitor.store.models import (
    Alert,
    CollectionRun,
    Comment,
    Community,
    ModelVersion,
    Rollup,
    RunStatus,
    Score,
    Thread,
)
from monitor.store.status import community_status

TTL = 60  # seconds: numbers are at most a minute old
HISTOGRAM_BINS = 20


@st.cache_resource(show_spinner=False)
def reader(url: str) -> Engine:
    """A read-only engine on a reachable database at the current schema, or a CivmonError saying what to run."""
    return schema.open_store(url, readonly=True)


@st.cache_resource(show_spinner=False)
def _writer(url: str) -> Engine:
    return make_engine(url)


@contextmanager
def _session(url: str) -> Iterator[Session]:
    with Session(reader(url)) as session:
        yield session


def clear() -> None:
    st.cache_data.clear()


def _frame(url: str, query: Select) -> pd.DataFrame:  # type: ignore[type-arg]
    """A query's rows as a frame whose columns are the query's own (also when it returns none)."""
    with _session(url) as session:
        result = session.execute(query)
        return pd.DataFrame(result.all(), columns=list(result.keys()))


# --- the store as a whole -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommunityInfo:
    id: int
    platform: str
    name: str
    first_day: int | None = None  # its first and last day bucket in the current version's rollups (UTC day starts)
    last_day: int | None = None

    @property
    def key(self) -> str:
        return f"{self.platform}/{self.name}"

    @property
    def label(self) -> str:
        return {"reddit": f"r/{self.name}", "hackernews": f"HN {self.name}"}.get(self.platform, f"API {self.name}")


@dataclass(frozen=True)
class StoreState:
    communities: list[CommunityInfo]
    version: str | None  # the newest model version with scores
    threshold: float | None  # its hostility threshold
    first_day: int | None  # first and last day bucket in the version's rollups (UTC day starts)
    last_day: int | None
    has_comments: bool = False


@st.cache_data(ttl=TTL, show_spinner=False)
def store_state(url: str) -> StoreState:
    with _session(url) as session:
        communities = [
            CommunityInfo(*row)
            for row in session.execute(
                select(Community.id, Community.platform, Community.name).order_by(Community.platform, Community.name)
            )
        ]
        version = current_version(session)
        if version is None:
            has_comments = session.scalar(select(Comment.id).limit(1)) is not None
            return StoreState(communities, None, None, None, None, has_comments)
        spans = {
            community_id: (first, last)
            for community_id, first, last in session.execute(
                select(Rollup.community_id, func.min(Rollup.start_utc), func.max(Rollup.start_utc))
                .where(Rollup.model_version == version, Rollup.bucket == "day")
                .group_by(Rollup.community_id)
            )
        }
        communities = [CommunityInfo(c.id, c.platform, c.name, *spans.get(c.id, (None, None))) for c in communities]
        first = min((f for f, _ in spans.values()), default=None)
        last = max((t for _, t in spans.values()), default=None)
        return StoreState(communities, version, rollups.hostile_threshold(session, version), first, last, True)


# --- overview -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommunitySummary:
    community: CommunityInfo
    since: int  # the community's "now" period; its baseline is BASELINE_FACTOR times as long, just before
    until: int
    now: BucketStats
    baseline: BucketStats
    trend: list[float | None]  # daily alliance index, oldest first; None: no day bucket, or too few scored
    open_alerts: int


BASELINE_FACTOR = 4


@st.cache_data(ttl=TTL, show_spinner=False)
def overview(
    url: str, version: str, windows: tuple[tuple[int, int, int], ...], trend_days: int
) -> list[CommunitySummary]:
    """Per community (windows: community id, since, until): the period and its baseline (rollups.period, with
    intervals), the daily alliance index over the last `trend_days` or the period if longer, for the sparkline
    (point values only, all communities in one rollup query), open alerts."""
    by_id = {c.id: c for c in store_state(url).communities}
    trend_since = {cid: min(since, until - trend_days * rollups.BUCKETS["day"]) for cid, since, until in windows}
    with _session(url) as session:
        open_alerts = dict(
            session.execute(
                select(Alert.community_id, func.count())
                .where(Alert.acknowledged_utc.is_(None))
                .group_by(Alert.community_id)
            ).all()
        )
        daily: dict[int, dict[int, float]] = {}
        for community_id, start, n, total in session.execute(
            select(Rollup.community_id, Rollup.start_utc, Rollup.alliance_n, Rollup.alliance_sum).where(
                Rollup.model_version == version,
                Rollup.bucket == "day",
                Rollup.start_utc >= min(trend_since.values(), default=0),
            )
        ):
            if shown("alliance", n):
                daily.setdefault(community_id, {})[start] = total / n  # the estimate stats.mean gives
        summaries = []
        for cid, since, until in windows:
            days = range(trend_since[cid], until, rollups.BUCKETS["day"])
            summaries.append(
                CommunitySummary(
                    by_id[cid],
                    since,
                    until,
                    rollups.period(session, cid, version, since, until),
                    rollups.period(session, cid, version, since - BASELINE_FACTOR * (until - since), since),
                    [daily.get(cid, {}).get(day) for day in days],
                    open_alerts.get(cid, 0),
                )
            )
        return summaries


# --- one community --------------------------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def period_stats(url: str, community_id: int, version: str, since: int, until: int) -> BucketStats:
    with _session(url) as session:
        return rollups.period(session, community_id, version, since, until)


@st.cache_data(ttl=TTL, show_spinner=False)
def series(url: str, community_id: int, version: str, bucket: str, since: int, until: int) -> list[BucketStats]:
    with _session(url) as session:
        return rollups.series(session, community_id, version, bucket, since, until)


@dataclass(frozen=True)
class Escalation:
    reciprocity: dynamics.Reciprocity
    depth: dict[int, tuple[float, int]]
    derailed: list[dynamics.Derailed]
    concentration: dynamics.Concentration | None
    replies_after_hostile: int  # sample sizes, for the "not enough data" notes
    replies_after_civil: int


@st.cache_data(ttl=TTL, show_spinner=False)
def escalation(url: str, community_id: int, version: str, since: int, until: int) -> Escalation:
    scope = dynamics.Scope(community_id, version, since, until)
    with _session(url) as session:
        reciprocity = dynamics.reciprocity(session, scope)
        return Escalation(
            reciprocity,
            dynamics.by_depth(session, scope),
            dynamics.derailed(session, scope),
            dynamics.concentration(session, scope),
            reciprocity.after_hostile.n if reciprocity.after_hostile else 0,
            reciprocity.after_civil.n if reciprocity.after_civil else 0,
        )


def _scored_in_period(community_id: int, version: str, since: int, until: int) -> list:  # type: ignore[type-arg]
    return [
        Comment.community_id == community_id,
        Comment.created_utc >= since,
        Comment.created_utc < until,
        Score.comment_id == Comment.id,
        Score.model_version == version,
        Score.hostility.is_not(None),
    ]


@st.cache_data(ttl=TTL, show_spinner=False)
def histogram(url: str, community_id: int, version: str, since: int, until: int) -> pd.DataFrame:
    """Scored comments of the period per hostility bin (width 1/HISTOGRAM_BINS), in one indexed pass."""
    width = 1 / HISTOGRAM_BINS
    h = Score.hostility
    bins = [
        func.coalesce(
            func.sum(
                case((and_(h >= i * width, h < (i + 1) * width if i < HISTOGRAM_BINS - 1 else h <= 1.0), 1), else_=0)
            ),
            0,
        )
        for i in range(HISTOGRAM_BINS)
    ]
    with _session(url) as session:
        counts = session.execute(
            select(*bins)
            .select_from(Comment)
            .join(Score, and_(*_scored_in_period(community_id, version, since, until)))
        ).one()
    return pd.DataFrame(
        {
            "low": [i * width for i in range(HISTOGRAM_BINS)],
            "high": [(i + 1) * width for i in range(HISTOGRAM_BINS)],
            "comments": [int(c) for c in counts],
        }
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def hot_threads(url: str, community_id: int, version: str, since: int, until: int, limit: int = 10) -> pd.DataFrame:
    """Threads with the most hostile comments in the period."""
    threshold = store_state(url).threshold or rollups.DEFAULT_THRESHOLD
    hostile = func.sum(case((Score.hostility >= threshold, 1), else_=0))
    query = (
        select(
            Thread.id,
            Thread.platform_id,
            Thread.title,
            Community.platform,
            Community.name.label("community"),
            func.count().label("scored"),
            hostile.label("hostile"),
            func.avg(Score.hostility).label("mean"),
        )
        .select_from(Comment)
        .join(Score, and_(*_scored_in_period(community_id, version, since, until)))
        .join(Thread, Thread.id == Comment.thread_id)
        .join(Community, Community.id == Comment.community_id)
        .group_by(Thread.id, Thread.platform_id, Thread.title, Community.platform, Community.name)
        .order_by(hostile.desc(), func.avg(Score.hostility).desc(), Thread.id)
        .limit(limit)
    )
    with _session(url) as session:
        rows = session.execute(query).all()
    return pd.DataFrame(
        [
            {
                "thread_id": r.id,
                "title": r.title or f"(thread {r.platform_id})",
                "hostile": int(r.hostile or 0),
                "scored": r.scored,
                "hostile_share": (r.hostile or 0) / r.scored,
                "mean_hostility": float(r.mean),
                "link": original_url(r.platform, r.community, r.platform_id),
            }
            for r in rows
        ],
        columns=["thread_id", "title", "hostile", "scored", "hostile_share", "mean_hostility", "link"],
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def hostile_comments(
    url: str, community_id: int, version: str, since: int, until: int, keep_bodies: bool, limit: int = 10
) -> pd.DataFrame:
    """The most hostile comments of the period; their text only where the privacy settings keep bodies."""
    query = (
        select(
            Comment.platform_id,
            Comment.author,
            Comment.created_utc,
            Comment.body,
            Score.hostility,
            Thread.id.label("thread_id"),
            Thread.platform_id.label("thread_pid"),
            Thread.title,
            Community.platform,
            Community.name.label("community"),
        )
        .select_from(Comment)
        .join(Score, and_(*_scored_in_period(community_id, version, since, until)))
        .join(Thread, Thread.id == Comment.thread_id)
        .join(Community, Community.id == Comment.community_id)
        .order_by(Score.hostility.desc(), Comment.id)
        .limit(limit)
    )
    with _session(url) as session:
        rows = session.execute(query).all()
    columns = ["hostility", "created_utc", "author", "thread_id", "thread", "text", "link"]
    return pd.DataFrame(
        [
            {
                "hostility": r.hostility,
                "created_utc": r.created_utc,
                "author": r.author,
                "thread_id": r.thread_id,
                "thread": r.title or f"(thread {r.thread_pid})",
                "text": r.body if keep_bodies else None,
                "link": original_url(r.platform, r.community, r.thread_pid, r.platform_id),
            }
            for r in rows
        ],
        columns=columns,
    )


# --- one thread -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadInfo:
    id: int
    platform_id: str
    title: str | None
    community_id: int
    link: str | None  # None: sent to the API, no original civmon knows of
    created_utc: int | None


@st.cache_data(ttl=TTL, show_spinner=False)
def thread_info(url: str, thread_id: int) -> ThreadInfo | None:
    with _session(url) as session:
        row = session.execute(
            select(
                Thread.id,
                Thread.platform_id,
                Thread.title,
                Thread.community_id,
                Thread.created_utc,
                Community.platform,
                Community.name.label("community"),
            )
            .join(Community, Community.id == Thread.community_id)
            .where(Thread.id == thread_id)
        ).one_or_none()
    if row is None:
        return None
    return ThreadInfo(
        row.id,
        row.platform_id,
        row.title,
        row.community_id,
        original_url(row.platform, row.community, row.platform_id),
        row.created_utc,
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def thread_comments(url: str, thread_id: int, version: str, keep_bodies: bool) -> pd.DataFrame:
    """Every comment of a thread with its scores (unscored ones too), in time order."""
    query = (
        select(
            Comment.id,
            Comment.platform_id,
            Comment.parent_platform_id,
            Comment.depth,
            Comment.author,
            Comment.created_utc,
            Comment.body,
            Comment.state,
            Score.hostility,
            Score.respect,
            Score.warmth,
            Score.skip_reason,
            Thread.platform_id.label("thread_pid"),
            Community.platform,
            Community.name.label("community"),
        )
        .select_from(Comment)
        .join(Thread, Thread.id == Comment.thread_id)
        .join(Community, Community.id == Comment.community_id)
        .outerjoin(Score, and_(Score.comment_id == Comment.id, Score.model_version == version))
        .where(Comment.thread_id == thread_id)
        .order_by(Comment.created_utc, Comment.id)
    )
    with _session(url) as session:
        rows = session.execute(query).all()
    return pd.DataFrame(
        [
            {
                "id": r.id,
                "platform_id": r.platform_id,
                "parent": r.parent_platform_id,
                "depth": r.depth,
                "author": r.author,
                "created_utc": r.created_utc,
                "text": r.body if keep_bodies else None,
                "state": str(r.state),
                "hostility": r.hostility,
                "respect": r.respect,
                "warmth": r.warmth,
                "skip_reason": r.skip_reason,
                "link": original_url(r.platform, r.community, r.thread_pid, r.platform_id),
            }
            for r in rows
        ],
        columns=[
            "id",
            "platform_id",
            "parent",
            "depth",
            "author",
            "created_utc",
            "text",
            "state",
            "hostility",
            "respect",
            "warmth",
            "skip_reason",
            "link",
        ],
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def thread_ids(url: str, community_id: int, platform_ids: tuple[str, ...]) -> dict[str, int]:
    """Thread platform id -> database id, for links to the Thread page."""
    with _session(url) as session:
        return dict(
            session.execute(
                select(Thread.platform_id, Thread.id).where(
                    Thread.community_id == community_id, Thread.platform_id.in_(platform_ids)
                )
            ).all()
        )


@st.cache_data(ttl=TTL, show_spinner=False)
def recent_threads(url: str, community_id: int, version: str, since: int, until: int, limit: int = 200) -> pd.DataFrame:
    """Threads with comments in the period, most hostile comments first (the thread picker)."""
    return hot_threads(url, community_id, version, since, until, limit)


# --- alerts ---------------------------------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def alerts(url: str, limit: int = 500) -> pd.DataFrame:
    """Open alerts, then the most recent past ones."""
    query = (
        select(
            Alert.id,
            Community.key.label("community"),
            Alert.kind,
            Alert.subject,
            Alert.bucket,
            Alert.start_utc,
            Alert.value,
            Alert.baseline,
            Alert.scored,
            Alert.message,
            Alert.created_utc,
            Alert.delivered_utc,
            Alert.acknowledged_utc,
            Alert.model_version,
        )
        .join(Community, Community.id == Alert.community_id)
        .order_by(Alert.acknowledged_utc.is_not(None), Alert.created_utc.desc(), Alert.id.desc())
        .limit(limit)
    )
    return _frame(url, query)


def acknowledge(url: str, alert_id: int) -> bool:
    """The dashboard's one write, on its own (writing) engine."""
    done = alert_metrics.acknowledge(_writer(url), alert_id)
    clear()
    return done


# --- data health ----------------------------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def runs(url: str, limit: int = 300) -> pd.DataFrame:
    query = (
        select(
            CollectionRun.id,
            CollectionRun.job,
            func.coalesce(Community.key, "(all)").label("community"),  # a run over every community has none
            CollectionRun.started_utc,
            CollectionRun.finished_utc,
            CollectionRun.status,
            CollectionRun.items_new.label("new"),
            CollectionRun.items_updated.label("updated"),
            CollectionRun.items_deleted.label("deleted"),
            CollectionRun.requests,
            CollectionRun.errors,
            CollectionRun.error,
        )
        .outerjoin(Community, Community.id == CollectionRun.community_id)
        .order_by(CollectionRun.started_utc.desc(), CollectionRun.id.desc())
        .limit(limit)
    )
    frame = _frame(url, query)
    frame["status"] = frame["status"].map(str)
    return frame


@st.cache_data(ttl=TTL, show_spinner=False)
def run_outcomes(url: str) -> dict[str, int]:
    """All runs ever, by status."""
    with _session(url) as session:
        return {
            str(s): n
            for s, n in session.execute(select(CollectionRun.status, func.count()).group_by(CollectionRun.status))
        }


@st.cache_data(ttl=TTL, show_spinner=False)
def community_health(url: str) -> pd.DataFrame:
    """Per community: comments stored and scored (store.status), last run, last successful run."""
    with _session(url) as session:
        statuses = community_status(session)
        last_ok = {
            f"{platform}/{name}": finished
            for platform, name, finished in session.execute(
                select(Community.platform, Community.name, func.max(CollectionRun.finished_utc))
                .join(CollectionRun, CollectionRun.community_id == Community.id)
                .where(CollectionRun.status.in_([RunStatus.OK, RunStatus.PARTIAL]))
                .group_by(Community.platform, Community.name)
            )
        }
    return pd.DataFrame(
        [
            {
                "community": f"{s.platform}/{s.name}",
                "comments": s.comments,
                "scored": s.scored,
                "last_run_utc": s.last_run_started_utc,
                "last_status": str(s.last_run_status) if s.last_run_status else None,
                "last_success_utc": last_ok.get(f"{s.platform}/{s.name}"),
                "last_error": s.last_run_error,
            }
            for s in statuses
        ],
        columns=["community", "comments", "scored", "last_run_utc", "last_status", "last_success_utc", "last_error"],
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def backlog(url: str, version: str) -> int:
    """Comments with text and no current score from the model in use (scoring.pending.count_pending)."""
    from monitor.scoring.pending import count_pending  # only this page needs the scoring stage

    with _session(url) as session:
        return count_pending(session, version)


@dataclass(frozen=True)
class VersionInfo:
    version: str
    name: str
    created_utc: int
    details: dict


@st.cache_data(ttl=TTL, show_spinner=False)
def model_versions(url: str) -> list[VersionInfo]:
    with _session(url) as session:
        rows = session.execute(select(ModelVersion).order_by(ModelVersion.created_utc.desc())).scalars().all()
        return [VersionInfo(m.version, m.name, m.created_utc, json.loads(m.details or "{}")) for m in rows]


def now() -> int:
    return int(time.time())
