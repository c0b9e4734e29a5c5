"""The scheduled jobs: each loads the configuration by path, runs one stage, and logs the run.

They take only plain arguments (a config path, a community key), because APScheduler keeps
them in the database and a restart rebuilds them from there. Every job catches its own
failure: one bad run is logged and never takes the scheduler, or the other jobs, down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, select

from monitor.config import CommunitySettings, ModelSettings, Settings, load_settings
from monitor.errors import CivmonError
from monitor.metrics.job import run_metrics
from monitor.privacy import load_pseudonymiser
from monitor.records import CommunityRef
from monitor.scoring.base import Scorer
from monitor.sources.collect import collect_community
from monitor.store.db import make_engine, transaction
from monitor.store.models import CollectionRun, RunStatus
from monitor.store.retention import purge
from monitor.store.runs import RunCounts, recorded_run
from monitor.store.upsert import ensure_community

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 6 * 3600
JobBody = Callable[[Settings, Engine, RunCounts], None]


def _settings(config: str | None) -> Settings:
    return load_settings(Path(config) if config else None)


@cache
def engine_for(url: str) -> Engine:
    return make_engine(url)


_scorers: dict[str, Scorer] = {}


def scorer_for(model: ModelSettings) -> Scorer:
    """One loaded model per configuration for the life of the process (loading takes seconds)."""
    from monitor.scoring.models import load_scorer

    key = model.model_dump_json()
    if key not in _scorers:
        _scorers[key] = load_scorer(model)
    return _scorers[key]


def interval_s(settings: Settings, community: CommunitySettings) -> float:
    return 60 * (community.interval_minutes or settings.collector.interval_minutes)


def backing_off(engine: Engine, community: CommunitySettings, interval: float, now: float) -> bool:
    """After consecutive failures, wait interval x 2^(failures - 1) (at most 6 h) before trying again."""
    community_id = ensure_community(engine, CommunityRef(community.platform, community.name))  # in any case
    with transaction(engine) as session:
        runs = session.execute(
            select(CollectionRun.status, CollectionRun.started_utc)
            .where(
                CollectionRun.community_id == community_id,
                CollectionRun.job == "collect",
                CollectionRun.status != RunStatus.RUNNING,
            )
            .order_by(CollectionRun.id.desc())
            .limit(8)
        ).all()
    failures = 0
    for status, _ in runs:
        if status != RunStatus.FAILED:
            break
        failures += 1
    return failures > 0 and now < runs[0].started_utc + min(interval * 2 ** (failures - 1), MAX_BACKOFF_S)


def collect_job(config: str | None, community_key: str) -> bool:
    """Whether the collection did not fail (a partial one did not; one backing off after failures neither)."""
    try:
        settings = _settings(config)
        community = next((c for c in settings.communities if c.key == community_key), None)
        if community is None:
            raise CivmonError(
                f"{community_key} is no longer in the configuration",
                "restart `civmon run`: the scheduler reads the communities when it starts",
            )
        engine = engine_for(settings.database.url)
        if backing_off(engine, community, interval_s(settings, community), time.time()):
            log.info("%s: backing off after failures; next try later", community_key)
            return True
        outcome = collect_community(settings, engine, community, load_pseudonymiser(settings.privacy))
        return outcome.status != RunStatus.FAILED
    except Exception as exc:
        return _failed(f"collect {community_key}", exc)


def _failed(job: str, exc: Exception) -> bool:
    """Log a job's failure, and say it failed: a user's mistake (the configuration edited into a broken one while
    `civmon run` runs, a community removed) as its message and what to do, anything else with its traceback."""
    if isinstance(exc, CivmonError):
        log.error("%s failed: %s", job, exc)
    else:
        log.exception("%s failed", job)
    return False


def _pipeline_job(job: str) -> Callable[[JobBody], Callable[[str | None], bool]]:
    """Make a job of `body(settings, engine, counts)`: it loads the configuration, logs its run, and
    logs a failure rather than raising it, since one bad run must not take the scheduler down; it returns
    whether it ran without one (`civmon run --once` exits 1 otherwise)."""

    def make(body: JobBody) -> Callable[[str | None], bool]:
        def run(config: str | None) -> bool:
            try:
                settings = _settings(config)
                engine = engine_for(settings.database.url)
                with recorded_run(engine, job, None) as counts:
                    body(settings, engine, counts)
                return True
            except Exception as exc:
                return _failed(job, exc)

        # APScheduler stores the job by module and name; not functools.wraps, which would make the
        # job look as if it took the body's arguments rather than a config path
        for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(run, attribute, getattr(body, attribute))
        return run

    return make


@_pipeline_job("score")
def score_job(settings: Settings, engine: Engine, counts: RunCounts) -> None:
    from monitor.scoring.pending import score_pending
    from monitor.scoring.workers import run_worker
    from monitor.store.lease import holder_id

    scorer = scorer_for(settings.model)
    if engine.dialect.name == "postgresql":  # workers may share the store (`score --worker`): claim, as they do
        summary = run_worker(engine, scorer, settings.privacy, settings.scoring, holder_id(), exit_when_idle=True)
    else:
        summary = score_pending(engine, scorer, settings.privacy)
    counts.new = summary.scored
    skipped = summary.skipped.total()
    log.info("score: %d scored, %d not scored, model %s", summary.scored, skipped, summary.model_version)


@_pipeline_job("metrics")
def metrics_job(settings: Settings, engine: Engine, counts: RunCounts) -> None:
    summary = run_metrics(engine, settings.alerts)
    counts.new = len(summary.alerts)
    log.info("metrics: %d bucket rows recomputed, %d new alerts", sum(summary.rollup_rows.values()), counts.new)


@_pipeline_job("retention")
def retention_job(settings: Settings, engine: Engine, counts: RunCounts) -> None:
    counts.deleted, trimmed = purge(engine, settings.privacy)
    log.info("retention: %d comment bodies purged, %d old run-log rows removed", counts.deleted, trimmed)
