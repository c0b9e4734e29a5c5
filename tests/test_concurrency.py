"""Two writer processes and a reader on the same database at once: nothing lost, no lock errors."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from monitor.store.db import make_engine
from monitor.store.models import Comment

HERE = Path(__file__).parent


def test_two_processes_write_the_same_database(engine, db_url):
    # Overlapping ranges: ids 1000..2999 are written by both processes, racing on the same rows.
    ranges = [(0, 6000), (2000, 6000)]
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    writers = [
        subprocess.Popen(
            [sys.executable, str(HERE / "concurrent_writer.py"), db_url, str(first), str(count)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for first, count in ranges
    ]
    reader = make_engine(db_url, readonly=True)
    reads = 0
    while any(w.poll() is None for w in writers):
        with reader.connect() as connection:  # a dashboard reading meanwhile must not fail either
            connection.scalar(select(func.count()).select_from(Comment))
        reads += 1
        time.sleep(0.02)
    errors = [w.stderr.read() for w in writers]
    assert [w.returncode for w in writers] == [0, 0], errors
    assert not any("locked" in e for e in errors)
    (start_a, end_a), (start_b, end_b) = ([float(t) for t in w.stdout.read().split()] for w in writers)
    assert start_a < end_b and start_b < end_a, "the writers did not overlap in time: the test proved nothing"
    with engine.connect() as connection:
        stored = connection.scalar(select(func.count()).select_from(Comment))
        distinct = connection.scalar(select(func.count(Comment.platform_id.distinct())))
    assert stored == distinct == 8000
    assert reads > 0
