"""Scoring workers' speed: comments/s of N `civmon score --worker` processes on one PostgreSQL store,
each given this machine's cores / N threads, over real texts seeded as pending comments."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session

from monitor.bench import scratch_database
from monitor.scoring.pending import count_pending
from monitor.scoring.workers import share_of_cores
from monitor.store import schema
from monitor.store.db import make_engine, transaction
from monitor.store.models import Comment, Community, ModelVersion, Thread
from monitor.store.upsert import body_hash

START = 1_700_000_000
CHUNK = 10_000


def seed(engine: Engine, texts: list[str]) -> None:
    """One community, one thread, the texts as live comments nobody has scored (a benchmark fixture: bulk rows)."""
    schema.upgrade(engine)
    with transaction(engine) as session:
        session.execute(insert(Community).values(id=1, platform="reddit", name="bench", created_utc=0))
        session.execute(
            insert(Thread).values(
                id=1, community_id=1, platform_id="s0", created_utc=START, first_seen_utc=0, last_seen_utc=0
            )
        )
    for first in range(0, len(texts), CHUNK):
        rows = [
            {
                "id": i + 1,
                "community_id": 1,
                "thread_id": 1,
                "platform_id": f"c{i}",
                "body": text,
                "body_hash": body_hash(text),
                "state": "live",
                "created_utc": START + i * 30,
                "first_seen_utc": START,
                "last_seen_utc": START,
            }
            for i, text in enumerate(texts[first : first + CHUNK], start=first)
        ]
        with transaction(engine) as session:
            session.execute(insert(Comment), rows)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))  # as autovacuum would after a load: the claims' plans need statistics


def worker_config(folder: Path, url: str, model: dict[str, object], scoring: dict[str, object]) -> Path:
    """A civmon.toml in `folder` for workers on `url` (the pseudonymisation key stays in that folder)."""
    config = {
        "database": {"url": url},
        "model": model,
        "scoring": scoring,
        "privacy": {"key_file": str(folder / "civmon.key")},
    }
    path = folder / "civmon.toml"
    path.write_text(tomli_w.dumps(config))
    return path


def start_worker(config: Path, threads: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "score", "--worker", "--threads", str(threads), "--config", str(config)]
        + list(extra),
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def measure(postgres_url: str, texts: list[str], workers: int) -> float:
    """Comments/s of `workers` worker processes scoring `texts` with the default model, timed from the first
    worker's model being loaded (it registers its version then) until every text has its score."""
    threads = share_of_cores(workers)
    with scratch_database(postgres_url) as url, tempfile.TemporaryDirectory() as folder:
        engine = make_engine(url)
        seed(engine, texts)
        config = worker_config(Path(folder), url, {"device": "cpu"}, {"workers": workers, "poll_seconds": 0.2})
        processes = [start_worker(config, threads, "--exit-when-idle") for _ in range(workers)]
        try:
            version = _wait(engine, processes, lambda session: session.scalar(select(ModelVersion.version)))
            started = time.perf_counter()
            _wait(engine, processes, lambda session: count_pending(session, version) == 0)
            seconds = time.perf_counter() - started
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.communicate(timeout=60)
        engine.dispose()
    return len(texts) / seconds


def _wait(engine: Engine, processes: list[subprocess.Popen[str]], done: Callable[[Session], Any]) -> Any:
    """Poll until `done(session)` is true, and return it; fail if every worker has exited first."""
    while True:
        with transaction(engine) as session:
            if result := done(session):
                return result
        if all(p.poll() is not None for p in processes):
            output = "\n".join((p.communicate()[0] or "")[-2000:] for p in processes)
            raise RuntimeError(f"every worker exited before the comments were scored:\n{output}")
        time.sleep(1.0)  # each look is a query over the whole store: often enough to time, rare enough not to slow it
