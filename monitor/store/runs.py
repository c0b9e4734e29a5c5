"""The run log: one row per job execution, written at start and at end, so `civmon status`
and the dashboard can tell a collection that failed from one still running or one killed."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, update
from sqlalchemy.exc import StatementError

from monitor.errors import CivmonError
from monitor.store.db import transaction
from monitor.store.models import CollectionRun, RunStatus

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 2000
MAX_REASON_CHARS = 200  # of an unexpected exception's first line


@dataclass
class RunCounts:
    new: int = 0
    updated: int = 0
    deleted: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)


@contextmanager
def recorded_run(engine: Engine, job: str, community_id: int | None) -> Iterator[RunCounts]:
    """Log a run: 'running' now; 'ok', 'partial' (some errors recorded) or 'failed' (an exception) at the end.

    The exception still propagates: the caller decides whether other work carries on.
    """
    with transaction(engine) as session:
        # A row still 'running' from before was killed mid-run (the scheduler runs one at a time).
        session.execute(
            update(CollectionRun)
            .where(
                CollectionRun.job == job,
                CollectionRun.community_id == community_id,
                CollectionRun.status == RunStatus.RUNNING,
            )
            .values(status=RunStatus.FAILED, error="interrupted (the process stopped mid-run)")
        )
        run = CollectionRun(job=job, community_id=community_id, started_utc=int(time.time()), status=RunStatus.RUNNING)
        session.add(run)
    counts = RunCounts()
    try:
        yield counts
    except BaseException as exc:
        _finish(engine, run.id, counts, RunStatus.FAILED, failure_text(exc))
        raise
    status = RunStatus.PARTIAL if counts.errors else RunStatus.OK
    _finish(engine, run.id, counts, status, "; ".join(counts.errors) or None)


def failure_text(exc: BaseException) -> str:
    """What the run log and the log say about a failure: a CivmonError explains itself; anything else is
    named by its class and the first line of its message. Never SQLAlchemy's whole text, which quotes
    the statement's parameters (comment bodies, pseudonyms), nor a database's DETAIL lines, which quote keys."""
    if isinstance(exc, CivmonError):
        return str(exc)
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):  # Ctrl-C, or SIGTERM/SIGHUP through stopping.exiting_on
        return "stopped mid-run (Ctrl-C or a signal): what it finished is stored, and a rerun does the rest"
    if isinstance(exc, StatementError) and exc.orig is not None:
        exc = exc.orig
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:MAX_REASON_CHARS]}" if lines else type(exc).__name__


def _finish(engine: Engine, run_id: int, counts: RunCounts, status: RunStatus, error: str | None) -> None:
    with transaction(engine) as session:
        session.execute(
            update(CollectionRun)
            .where(CollectionRun.id == run_id)
            .values(
                finished_utc=int(time.time()),
                status=status,
                items_new=counts.new,
                items_updated=counts.updated,
                items_deleted=counts.deleted,
                requests=counts.requests,
                errors=len(counts.errors),
                error=error[:MAX_ERROR_CHARS] if error else None,
            )
        )
