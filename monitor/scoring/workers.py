"""`civmon score --worker`: one of any number of scoring processes, on any number of machines, that
share one PostgreSQL store.

A worker claims a batch of pending comments (pending as `civmon score` means it): the candidates
are locked FOR NO KEY UPDATE SKIP LOCKED, so concurrent workers pass over each other's, and one
score_claims row per comment records the claim with a lease on the database's clock. The claim is
committed before the model works, so no transaction is open while it scores, and a thread renews
the lease every third of its length. The scores are written and the claims deleted in one
transaction, and only for the claims the worker still holds unexpired: one that stalled past its
lease drops its results rather than write a comment a second time. A dead worker's claims are
claimed again once their lease runs out, so none of its batch is left behind.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from monitor.config import PrivacySettings, ScoringSettings
from monitor.scoring.base import Scorer
from monitor.scoring.pending import Holding, ScoreSummary, count_pending, pending_comments, prepare_store, score_batch
from monitor.stopping import STOP, stop_requested
from monitor.store.db import database_now, transaction
from monitor.store.models import Comment, ScoreClaim

log = logging.getLogger(__name__)


@dataclass
class WorkerSummary(ScoreSummary):
    batches: int = 0
    taken_over: int = 0  # claims of a dead (or stalled) worker that this one took over
    lost: int = 0  # results dropped: this worker's lease ran out before it wrote them


@dataclass(frozen=True)
class Claimed:
    ids: list[int]  # every comment claimed
    rows: list[Any]  # (id, body, body_hash) of those still pending
    taken_over: int
    from_holders: frozenset[str]  # whose expired claims were taken over


def claim(engine: Engine, version: str, holder: str, size: int, lease_s: int, after: int = 0) -> Claimed:
    """Claim up to `size` comments: expired claims first (their worker died), then unclaimed pending ones
    with ids above `after` (where this worker's last claim ended: not a walk past every scored comment)."""
    with transaction(engine) as session:
        now = database_now(session)
        lease = {"holder": holder, "claimed_utc": now, "expires_utc": now + lease_s}
        expired = session.execute(
            select(ScoreClaim.comment_id, ScoreClaim.holder)
            .where(ScoreClaim.model_version == version, ScoreClaim.expires_utc < now)
            .order_by(ScoreClaim.comment_id)
            .limit(size)
            .with_for_update(skip_locked=True)
        ).all()
        if expired:
            session.execute(
                update(ScoreClaim)
                .where(ScoreClaim.model_version == version, ScoreClaim.comment_id.in_([e.comment_id for e in expired]))
                .values(**lease, takeovers=ScoreClaim.takeovers + 1)
            )
        ids = [e.comment_id for e in expired] + _claim_unclaimed(session, version, size - len(expired), lease, after)
    with transaction(engine) as session:  # a fresh look: another worker may have written some in between
        rows = (
            session.execute(pending_comments(version).where(Comment.id.in_(ids)).order_by(Comment.id)).all()
            if ids
            else []
        )
        if gone := set(ids) - {r.id for r in rows}:
            _release(session, version, holder, gone)
    return Claimed(ids, rows, len(expired), frozenset(e.holder for e in expired))


def _claim_unclaimed(session: Session, version: str, size: int, lease: dict[str, Any], after: int) -> list[int]:
    if size <= 0:
        return []
    claims = and_(ScoreClaim.comment_id == Comment.id, ScoreClaim.model_version == version)
    query = (
        pending_comments(version)
        .outerjoin(ScoreClaim, claims)
        .where(ScoreClaim.comment_id.is_(None), Comment.id > after)
        .order_by(Comment.id)
        .limit(size)
        .with_for_update(skip_locked=True, key_share=True, of=Comment)
    )
    ids = [row.id for row in session.execute(query)]
    if not ids:
        return []
    # A worker whose snapshot predates another's committed claim still meets that claim here: not taken twice.
    stmt = insert(ScoreClaim).values(
        [{"comment_id": i, "model_version": version, "takeovers": 0, **lease} for i in ids]
    )
    return list(session.scalars(stmt.on_conflict_do_nothing().returning(ScoreClaim.comment_id)))


def _release(session: Session, version: str, holder: str, ids: set[int] | list[int]) -> set[int]:
    """Delete this worker's live claims on `ids`; returns the ids it still held."""
    now = database_now(session)
    stmt = (
        delete(ScoreClaim)
        .where(
            ScoreClaim.model_version == version,
            ScoreClaim.holder == holder,
            ScoreClaim.comment_id.in_(list(ids)),
            ScoreClaim.expires_utc >= now,
        )
        .returning(ScoreClaim.comment_id)
    )
    return set(session.scalars(stmt))


def holding(version: str, holder: str) -> Holding:
    """For `score_batch`: in the write transaction, give up the claims and write only where they were still ours."""
    return lambda session, ids: _release(session, version, holder, ids)


@contextmanager
def renewing(engine: Engine, version: str, holder: str, lease_s: int) -> Iterator[None]:
    """Extend this worker's leases every third of their length while the model works."""
    done = threading.Event()

    def renew() -> None:
        while not done.wait(lease_s / 3):
            try:
                with transaction(engine) as session:
                    now = database_now(session)
                    session.execute(
                        update(ScoreClaim)
                        .where(ScoreClaim.model_version == version, ScoreClaim.holder == holder)
                        .values(expires_utc=now + lease_s)
                    )
            except Exception:  # a database blip: the next renewal tries again; an expired lease costs one batch
                log.exception("renewing the claims' lease failed")

    thread = threading.Thread(target=renew, name="lease renewal", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def run_worker(
    engine: Engine,
    scorer: Scorer,
    privacy: PrivacySettings,
    scoring: ScoringSettings,
    holder: str,
    exit_when_idle: bool = False,
) -> WorkerSummary:
    """Claim, score and write batches until stopped (or, with `exit_when_idle`, until nothing is pending:
    claimed by nobody or by a worker still at it, whose lease this one waits out)."""
    start = time.perf_counter()
    summary = WorkerSummary(scorer.version)
    with transaction(engine) as session:
        prepare_store(session, scorer, privacy)
    log.info(
        "worker %s: model %s, %d comments a claim, lease %d s",
        holder,
        scorer.version,
        scoring.claim_batch,
        scoring.lease_seconds,
    )
    after = 0
    while not stop_requested():
        claimed = claim(engine, scorer.version, holder, scoring.claim_batch, scoring.lease_seconds, after)
        if claimed.taken_over:
            log.warning(
                "took over %d claims whose lease had expired, from %s",
                claimed.taken_over,
                "; ".join(sorted(claimed.from_holders)),
            )
        if not claimed.ids and after:  # from the start again: comments edited since, or passed over while locked
            after = 0
            continue
        after = max(claimed.ids, default=0)
        if not claimed.ids:
            if exit_when_idle and _nothing_pending(engine, scorer.version):
                break
            STOP.wait(scoring.poll_seconds)
            continue
        if claimed.rows:
            _score_claimed(engine, scorer, privacy, scoring, holder, claimed, summary)
    summary.seconds = time.perf_counter() - start
    log.info(
        "worker %s stopped: %d scored, %d not scored, %d batches, %d claims taken over, %d results lost, in %.1f s",
        holder,
        summary.scored,
        summary.skipped.total(),
        summary.batches,
        summary.taken_over,
        summary.lost,
        summary.seconds,
    )
    return summary


def _score_claimed(
    engine: Engine,
    scorer: Scorer,
    privacy: PrivacySettings,
    scoring: ScoringSettings,
    holder: str,
    claimed: Claimed,
    summary: WorkerSummary,
) -> None:
    started, before = time.perf_counter(), summary.scored + summary.skipped.total()
    with renewing(engine, scorer.version, holder, scoring.lease_seconds):
        lost = score_batch(engine, scorer, claimed.rows, privacy, summary, holding(scorer.version, holder))
    summary.batches += 1
    summary.taken_over += claimed.taken_over
    summary.lost += lost
    written = summary.scored + summary.skipped.total() - before
    seconds = time.perf_counter() - started
    log.info(
        "batch %d: %d comments written in %.1f s (%.0f/s)%s; %d scored so far",
        summary.batches,
        written,
        seconds,
        written / seconds if seconds else 0,
        f", {lost} dropped: the lease ran out first" if lost else "",
        summary.scored,
    )


def _nothing_pending(engine: Engine, version: str) -> bool:
    with transaction(engine) as session:
        return count_pending(session, version) == 0


def threads_per_worker(scoring: ScoringSettings) -> int:
    """CPU threads for one worker: as configured, else this machine's cores shared among its workers."""
    return scoring.threads or share_of_cores(scoring.workers)


def share_of_cores(processes: int) -> int:
    """Model threads for each of `processes` scoring processes on this machine (each at torch's default
    of every core would oversubscribe them)."""
    return max(1, cores() // processes)


def cores() -> int:
    """The cores this process may use (its affinity, as a container or taskset limits it)."""
    return len(os.sched_getaffinity(0))
