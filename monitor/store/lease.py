"""One holder per database for a singleton role (the scheduler): a lease row kept alive by heartbeats.

APScheduler 3's job store cannot be shared by two schedulers, so a second `civmon run` on the
same database must refuse to start. A holder that died (no heartbeat for `ttl` seconds) is
taken over, so a crash never locks the database out for good.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import DBAPIError

from monitor.errors import CivmonError
from monitor.store.db import dialect_insert, display_url, driver_reason, transaction
from monitor.store.models import Lease

log = logging.getLogger(__name__)
HEARTBEAT_S = 15
TTL_S = 60


def holder_id() -> str:
    return f"{socket.gethostname()} pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}"


def acquire(engine: Engine, name: str, holder: str, ttl_s: int = TTL_S, now: int | None = None) -> None:
    """Take the lease, or raise a CivmonError naming who holds it."""
    now = now or int(time.time())
    with transaction(engine) as session:
        stmt = dialect_insert(session, Lease.__table__).values(
            name=name, holder=holder, acquired_utc=now, heartbeat_utc=now
        )
        claimed = stmt.on_conflict_do_nothing(index_elements=["name"]).execution_options(preserve_rowcount=True)
        if session.execute(claimed).rowcount == 1:  # psycopg reports -1 unless asked to count
            return
        taken_over = session.execute(
            update(Lease)
            .where(Lease.name == name, Lease.heartbeat_utc < now - ttl_s)
            .values(holder=holder, acquired_utc=now, heartbeat_utc=now)
            .execution_options(preserve_rowcount=True)
        ).rowcount
        if taken_over:
            return
        current = session.scalars(select(Lease).where(Lease.name == name)).one()
    raise CivmonError(
        f"another civmon {name} is running on {display_url(engine.url)}: {current.holder} "
        f"(last heartbeat {now - current.heartbeat_utc} s ago)",
        f"stop that one first; if it died, its lease expires {ttl_s} s after its last heartbeat",
    )


def heartbeat(engine: Engine, name: str, holder: str) -> bool:
    """Refresh the lease; False if someone else holds it now (ours expired and was taken over)."""
    with transaction(engine) as session:
        result = session.execute(
            update(Lease)
            .where(Lease.name == name, Lease.holder == holder)
            .values(heartbeat_utc=int(time.time()))
            .execution_options(preserve_rowcount=True)
        )
        return result.rowcount == 1


@contextmanager
def held(engine: Engine, name: str, on_lost: Callable[[], None]) -> Iterator[str]:
    """Hold the lease for the block: taken first (or a CivmonError), kept alive by a thread of its own, released
    after. The heartbeat used to be one of the scheduler's jobs, which long collections could keep waiting past the
    TTL (and `run --once` had none): a second scheduler then took over a live one. `on_lost` is called if another
    process takes the lease over all the same (this one's heartbeats could not reach the database for a TTL)."""
    holder = holder_id()
    acquire(engine, name, holder)
    done = threading.Event()
    beating = threading.Thread(target=_beat, args=(engine, name, holder, done, on_lost), name=f"{name} lease")
    beating.start()
    try:
        yield holder
    finally:
        done.set()
        beating.join()
        release(engine, name, holder)


def _beat(engine: Engine, name: str, holder: str, done: threading.Event, on_lost: Callable[[], None]) -> None:
    while not done.wait(HEARTBEAT_S):
        try:
            alive = heartbeat(engine, name, holder)
        except DBAPIError as exc:  # the database away for a moment: the lease lives TTL_S, so try again
            log.warning("the %s lease's heartbeat failed (again in %d s): %s", name, HEARTBEAT_S, driver_reason(exc))
            continue
        if not alive:
            log.error("the %s lease was taken over by another process; stopping", name)
            on_lost()
            return


def release(engine: Engine, name: str, holder: str) -> None:
    with transaction(engine) as session:
        session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))
