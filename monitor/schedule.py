"""`civmon run`: the APScheduler wiring — which job calls which stage, and when.

The schedule lives in the monitor's own database (APScheduler's SQLAlchemyJobStore), so a
restart picks it up where it left off; jobs never overlap themselves (max_instances=1) and
missed runs coalesce into one. Collection jobs carry jitter so communities do not fire
together. A lease row makes sure only one scheduler works a database at a time.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from monitor import jobs
from monitor.config import Settings
from monitor.stopping import STOP
from monitor.store import lease
from monitor.workerpool import WorkerPool

log = logging.getLogger(__name__)
LEASE = "scheduler"
JOB_TABLE = "apscheduler_jobs"


@dataclass(frozen=True)
class Plan:
    id: str
    func: Callable[..., bool]  # whether the job ran without failing (APScheduler ignores it)
    seconds: float
    args: tuple[str | None, ...]
    jitter: int = 0


class _Scheduler(BackgroundScheduler):
    """APScheduler's background scheduler, minus a shutdown race: its loop makes one more pass after
    shutdown() has closed the executors, and submits due jobs to the closed pool ("cannot schedule
    new futures after shutdown", apscheduler#285). Once stopping, it submits nothing."""

    def _process_jobs(self):  # type: ignore[no-untyped-def]
        if self.state == STATE_STOPPED:
            return None
        return super()._process_jobs()


def plans(settings: Settings, config: str | None, *, pooled: bool = False) -> list[Plan]:
    """The jobs; `pooled`: without the score job, which a pool of scoring workers replaces."""
    s = settings.schedule
    out = [
        Plan(
            f"collect:{c.key}",
            jobs.collect_job,
            jobs.interval_s(settings, c),
            (config, c.key),
            jitter=int(min(60, jobs.interval_s(settings, c) / 10)),
        )
        for c in settings.communities
    ]
    if not pooled:
        out.append(Plan("score", jobs.score_job, s.score_minutes * 60, (config,)))
    return out + [
        Plan("metrics", jobs.metrics_job, s.metrics_minutes * 60, (config,)),
        Plan("retention", jobs.retention_job, s.retention_hours * 3600, (config,)),
    ]


def build(settings: Settings, config: str | None, engine: Engine, pooled: bool = False) -> BackgroundScheduler:
    scheduler = _Scheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE), "memory": MemoryJobStore()},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        timezone="UTC",
    )
    scheduler.start(paused=True)  # loads the stored schedule, runs nothing yet
    wanted = {p.id: p for p in plans(settings, config, pooled=pooled)}
    for job in scheduler.get_jobs(jobstore="default"):
        plan = wanted.get(job.id)
        if plan is None or job.args != plan.args or job.trigger.interval.total_seconds() != plan.seconds:
            job.remove()  # a community no longer configured, or a changed interval
    kept = {job.id for job in scheduler.get_jobs(jobstore="default")}
    for plan in wanted.values():
        if plan.id not in kept:
            scheduler.add_job(
                plan.func,
                IntervalTrigger(seconds=plan.seconds, jitter=plan.jitter or None),
                args=plan.args,
                id=plan.id,
                name=plan.id,
                next_run_time=_now(),
            )
    return scheduler


def _now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)


def run_forever(settings: Settings, config: str | None, engine: Engine) -> None:
    """Hold the lease, run the schedule until SIGTERM/SIGINT, then stop cleanly."""
    with lease.held(engine, LEASE, on_lost=STOP.set):
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: STOP.set())
        pool = None
        if settings.scoring.workers > 1:  # worker processes score, in place of the score job
            from monitor.scoring.workers import threads_per_worker  # the model's code: only where it is needed

            pool = WorkerPool(settings.scoring.workers, config, threads_per_worker(settings.scoring))
        scheduler = build(settings, config, engine, pooled=pool is not None)
        log.info("scheduler started: %s", ", ".join(f"{j.id} every {j.trigger.interval}" for j in scheduler.get_jobs()))
        scheduler.resume()
        try:
            while not STOP.wait(1):
                if pool:
                    pool.check()
            log.info("stopping: letting the running jobs finish their current batch")
        finally:
            scheduler.shutdown(wait=True)  # the running jobs finish their current batch (they check STOP)
            if pool:
                pool.stop()
    log.info("scheduler stopped")


def run_once(settings: Settings, config: str | None, engine: Engine) -> list[str]:
    """Every job once, in pipeline order (for cron and CI); the lease still keeps one runner per database.
    Returns the jobs that failed: cron is told by the exit status."""
    failed = []
    with lease.held(engine, LEASE, on_lost=STOP.set):
        for plan in plans(settings, config):
            if STOP.is_set():
                break
            if not plan.func(*plan.args):
                failed.append(plan.id)
    return failed
