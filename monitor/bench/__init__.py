"""Benchmarks that print figures (`civmon bench ...`); never timed tests."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from monitor.store.db import scratch_postgres_database

T = TypeVar("T")


def timed(work: Callable[[], T]) -> tuple[float, T]:
    """Seconds `work` took, and what it returned."""
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


@contextmanager
def scratch_database(postgres_url: str | None) -> Iterator[str]:
    """A new, empty database for one run: on that PostgreSQL server, or a SQLite file when None."""
    if postgres_url:
        with scratch_postgres_database(postgres_url) as scratch:
            yield scratch
        return
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{Path(folder) / 'bench.db'}"
