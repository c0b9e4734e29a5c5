"""The scheduler's lease held by a heartbeat thread of its own, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, update

from monitor.errors import CivmonError
from monitor.store import lease
from monitor.store.models import Lease


def held_row(engine) -> Lease | None:
    with engine.connect() as connection:
        return connection.execute(select(Lease)).one_or_none()


def test_the_lease_stays_alive_while_its_holder_is_busy(engine, monkeypatch):
    """Its heartbeat was a scheduler job that busy collections kept waiting: a second scheduler took over."""
    monkeypatch.setattr(lease, "HEARTBEAT_S", 0.2)
    lost = threading.Event()
    with lease.held(engine, "scheduler", on_lost=lost.set):
        acquired = held_row(engine).heartbeat_utc
        time.sleep(2.2)  # busy, as a long collection is: nothing of the holder's own beats
        assert held_row(engine).heartbeat_utc > acquired
        with pytest.raises(CivmonError, match="another civmon scheduler is running"):
            lease.acquire(engine, "scheduler", "a second one", ttl_s=1)  # a heartbeat within the second
    assert not lost.is_set() and held_row(engine) is None  # released at the end


def test_a_lease_taken_over_stops_its_holder(engine, monkeypatch):
    monkeypatch.setattr(lease, "HEARTBEAT_S", 0.1)
    lost = threading.Event()
    with lease.held(engine, "scheduler", on_lost=lost.set):
        with engine.begin() as connection:
            connection.execute(update(Lease).values(holder="another host pid 7"))
        assert lost.wait(5)
    assert held_row(engine).holder == "another host pid 7"  # its lease now: left in place
