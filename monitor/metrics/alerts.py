"""Spike alerts: a community's hostility, or a thread's, rising well above its own baseline.

Baseline, per community: median and MAD of the same metric over the previous
`baseline_days`, for hour buckets by hour of week where at least four such hours carry
enough comments (so Sunday night is compared with Sunday nights), else over all hour
buckets of the window; day buckets against previous days. A bucket fires when it has at
least `min_comments` scored comments and its value exceeds

    median + threshold_mads * max(1.4826 * MAD, the bucket's own standard error),

so a quiet bucket's noise is not read as a spike. Each run checks every hour and day bucket that new comments or
scores changed since the last run (within `baseline_days` of the latest), oldest first, so a spike is caught even
when the collection that brought it also brought the next hour's first comment. A thread fires when, within its latest
hour, it has at least 10 scored comments and a hostile share of at least 0.5 and three times
the community's baseline. One incident is one alert: the same community and kind stay quiet
for `cooldown_hours`, and a bucket never fires twice. Alerts go to the database (for the
dashboard), the log, and an optional Slack/Discord-compatible webhook (retried; a failure
never blocks anything and is retried on the next run).
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from sqlalchemy import Engine, and_, case, func, select
from sqlalchemy.orm import Session
from tenacity import retry, stop_after_attempt, wait_exponential

from monitor.config import AlertSettings
from monitor.metrics.rollups import BUCKETS, hostile_threshold, serialise, touched
from monitor.metrics.stats import shape
from monitor.store.db import dialect_insert, transaction
from monitor.store.models import Alert, Comment, Community, Rollup, RollupState, Score, Thread

log = logging.getLogger(__name__)
MAD_TO_SD = 1.4826
HOUR_OF_WEEK_MIN = 4
THREAD_MIN_COMMENTS, THREAD_MIN_SHARE, THREAD_BASELINE_FACTOR = 10, 0.5, 3.0
CHECKED, KINDS = ("hour", "day"), ("hostile_share", "hostility")


@dataclass(frozen=True)
class Check:
    kind: str
    bucket: str  # "hour" or "day"; a thread's hour is an hour
    start_utc: int
    value: float
    baseline: float | None
    limit: float | None
    scored: int

    @property
    def fires(self) -> bool:
        return self.limit is not None and self.value > self.limit


def _value(row: Rollup, kind: str) -> tuple[float, float] | None:
    """(value, standard error) of a bucket for a metric kind: point estimates from the sums, no interval (a check
    reads hundreds of past buckets)."""
    n = row.scored
    if n == 0:
        return None
    if kind == "hostile_share":
        p = row.hostile / n
        return p, math.sqrt(max(p * (1 - p), 1e-6) / n)
    spread = shape(n, row.hostility_sum, row.hostility_sum2, row.hostility_sum3, row.hostility_sum4)
    if kind == "hostility" and spread:
        return row.hostility_sum / n, spread.sd / math.sqrt(n)
    return None


def check_bucket(row: Rollup, history: list[Rollup], kind: str, settings: AlertSettings) -> Check | None:
    current = _value(row, kind)
    if current is None or row.scored < settings.min_comments:
        return None
    value, error = current
    past = [v[0] for h in history if h.scored >= settings.min_comments and (v := _value(h, kind))]
    if row.bucket == "hour":
        same_hour = [
            v[0]
            for h in history
            if (h.start_utc - row.start_utc) % BUCKETS["week"] == 0
            and h.scored >= settings.min_comments
            and (v := _value(h, kind))
        ]
        past = same_hour if len(same_hour) >= HOUR_OF_WEEK_MIN else past
    if len(past) < HOUR_OF_WEEK_MIN:
        return Check(kind, row.bucket, row.start_utc, value, None, None, row.scored)  # no baseline yet: no alert
    median = statistics.median(past)
    mad = statistics.median(abs(v - median) for v in past)
    limit = median + settings.threshold_mads * max(MAD_TO_SD * mad, error)
    return Check(kind, row.bucket, row.start_utc, value, median, limit, row.scored)


def evaluate(engine: Engine, model_version: str, settings: AlertSettings, now: int | None = None) -> list[Alert]:
    """New alerts for each community's buckets that changed since the last evaluation (the latest hour and day
    the first time) and its hot threads."""
    now = now or int(time.time())
    created: list[Alert] = []
    with transaction(engine) as session:
        serialise(session)  # one evaluation at a time, after any refresh of the rollups it reads
        state = session.get(RollupState, model_version)
        since = state.alerts_utc if state is not None else None
        changed = None if since is None else {b: touched(session, model_version, b, since) for b in CHECKED}
        for community in session.scalars(select(Community)):
            for check in _bucket_checks(session, community.id, model_version, settings, changed):
                if check.fires and (alert := _record(session, community, model_version, check, "", settings, now)):
                    created.append(alert)
            created += _thread_alerts(session, community, model_version, settings, now)
        if state is not None:
            state.alerts_utc = state.watermark_utc  # what the rollups just read hold, checked
    for alert in created:
        log.warning("alert: %s", alert.message)
    return created


def _bucket_checks(
    session: Session,
    community_id: int,
    model_version: str,
    settings: AlertSettings,
    changed: dict[str, dict[int, set[int]]] | None,
) -> list[Check]:
    """Each bucket to check, oldest first, so that an incident's alert names where it began: those that changed
    (None: the latest), within the baseline window of the latest; a spike is an alert even when collection brought
    the next hour's first comment with it, or caught up after a gap."""
    checks = []
    window = settings.baseline_days * BUCKETS["day"]
    for bucket in CHECKED:
        scope = (Rollup.community_id == community_id, Rollup.model_version == model_version, Rollup.bucket == bucket)
        latest = session.scalar(select(func.max(Rollup.start_utc)).where(*scope))
        if latest is None:
            continue
        wanted = {latest} if changed is None else changed[bucket].get(community_id, set())
        wanted = {start for start in wanted if start >= latest - window}
        if not wanted:
            continue
        rows = session.scalars(
            select(Rollup).where(*scope, Rollup.start_utc >= min(wanted) - window, Rollup.start_utc <= max(wanted))
        )
        by_start = {row.start_utc: row for row in rows}
        for start in sorted(wanted & by_start.keys()):
            history = [h for h in by_start.values() if start - window <= h.start_utc < start]
            checks += [c for kind in KINDS if (c := check_bucket(by_start[start], history, kind, settings))]
    return checks


def _record(
    session: Session,
    community: Community,
    model_version: str,
    check: Check,
    subject: str,
    settings: AlertSettings,
    now: int,
) -> Alert | None:
    """Store the alert unless it repeats an incident (same bucket, or within the cooldown)."""
    recent = session.scalar(
        select(func.count())
        .select_from(Alert)
        .where(
            Alert.community_id == community.id,
            Alert.kind == check.kind,
            Alert.subject == subject,
            Alert.created_utc >= now - settings.cooldown_hours * 3600,
        )
    )
    if recent:
        return None
    where = f"thread {subject} in " if subject else ""
    baseline = f"{check.baseline:.2f}" if check.baseline is not None else "n/a"
    message = (
        f"{where}{community.platform}/{community.name}: {check.kind.replace('_', ' ')} {check.value:.2f} "
        f"{_when(check)}, against a baseline of {baseline} ({check.scored} scored comments)"
    )
    values = dict(
        community_id=community.id,
        kind=check.kind,
        subject=subject,
        bucket=check.bucket,
        model_version=model_version,
        start_utc=check.start_utc,
        value=check.value,
        baseline=check.baseline,
        scored=check.scored,
        message=message,
        created_utc=now,
    )
    stmt = (
        dialect_insert(session, Alert.__table__)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["community_id", "kind", "subject", "bucket", "start_utc"])
        .execution_options(preserve_rowcount=True)  # psycopg reports -1 unless asked to count
    )
    if session.execute(stmt).rowcount == 0:
        return None
    return Alert(**values)


def _when(check: Check) -> str:
    start = datetime.fromtimestamp(check.start_utc, UTC)
    return f"on {start:%Y-%m-%d} (UTC)" if check.bucket == "day" else f"in the hour from {start:%Y-%m-%d %H:%M} UTC"


def _thread_alerts(
    session: Session, community: Community, model_version: str, settings: AlertSettings, now: int
) -> list[Alert]:
    latest = session.scalar(select(func.max(Comment.created_utc)).where(Comment.community_id == community.id))
    if latest is None:
        return []
    since = latest - 3600
    threshold = hostile_threshold(session, model_version)
    baseline = _baseline_share(session, community.id, model_version, settings)
    needed = max(THREAD_MIN_SHARE, THREAD_BASELINE_FACTOR * baseline)
    query = (
        select(
            Thread.platform_id,
            func.count(),
            func.sum(case((Score.hostility >= threshold, 1), else_=0)),
            func.min(Comment.created_utc),
        )
        .select_from(Comment)
        .join(Thread, Thread.id == Comment.thread_id)
        .join(
            Score,
            and_(Score.comment_id == Comment.id, Score.model_version == model_version, Score.hostility.is_not(None)),
        )
        .where(Comment.community_id == community.id, Comment.created_utc >= since)
        .group_by(Thread.platform_id)
        .having(func.count() >= THREAD_MIN_COMMENTS)
    )
    alerts = []
    for thread_id, n, hostile, first in session.execute(query):
        if hostile / n >= needed:  # stamped with the hour its first comment in the window fell in
            check = Check("thread", "hour", first - first % 3600, hostile / n, baseline, needed, n)
            if alert := _record(session, community, model_version, check, thread_id, settings, now):
                alerts.append(alert)
    return alerts


def _baseline_share(session: Session, community_id: int, model_version: str, settings: AlertSettings) -> float:
    rows = session.scalars(
        select(Rollup)
        .where(
            Rollup.community_id == community_id,
            Rollup.model_version == model_version,
            Rollup.bucket == "day",
            Rollup.scored >= settings.min_comments,
        )
        .order_by(Rollup.start_utc.desc())
        .limit(settings.baseline_days)
    )
    shares = [r.hostile / r.scored for r in rows]
    return statistics.median(shares) if shares else 0.0


def deliver(engine: Engine, url: str, timeout_s: float = 5.0) -> int:
    """POST undelivered alerts to a Slack/Discord-compatible webhook; returns how many went through."""
    with transaction(engine) as session:
        pending = list(session.scalars(select(Alert).where(Alert.delivered_utc.is_(None)).order_by(Alert.id)))
    sent = 0
    for alert in pending:
        try:
            _post(url, alert, timeout_s)
        except Exception as exc:  # delivery never stops the metrics job (urllib3 raises beyond requests)
            log.error("alert webhook %s failed (will retry on the next run): %s", redacted(url), _failure(exc))
            break
        with transaction(engine) as session:
            session.get(Alert, alert.id).delivered_utc = int(time.time())
        sent += 1
    return sent


def redacted(url: str) -> str:
    """A webhook URL as it may be logged: its path and query are the secret, so only the host shows."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


def _failure(exc: Exception) -> str:
    """What went wrong, without requests' own text: it quotes the URL, secret path and all."""
    if isinstance(exc, requests.RequestException) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    kinds = {requests.Timeout: "timed out", requests.ConnectionError: "could not connect"}
    return next((text for kind, text in kinds.items() if isinstance(exc, kind)), type(exc).__name__)


@retry(stop=stop_after_attempt(3), wait=wait_exponential(multiplier=0.5, max=5), reraise=True)
def _post(url: str, alert: Alert, timeout_s: float) -> None:
    text = f"civmon alert: {alert.message}"
    payload = {
        "text": text,
        "content": text,  # Slack reads "text", Discord "content"
        "civmon": {
            "kind": alert.kind,
            "subject": alert.subject,
            "value": alert.value,
            "baseline": alert.baseline,
            "scored": alert.scored,
            "start_utc": alert.start_utc,
        },
    }
    requests.post(url, json=payload, timeout=timeout_s).raise_for_status()


def acknowledge(engine: Engine, alert_id: int, when: int | None = None) -> bool:
    """Mark an alert as seen (the one write the dashboard makes); False if there is no such open alert."""
    with transaction(engine) as session:
        alert = session.get(Alert, alert_id)
        if alert is None or alert.acknowledged_utc is not None:
            return False
        alert.acknowledged_utc = when or int(time.time())
    return True
