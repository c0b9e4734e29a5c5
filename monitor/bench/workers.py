"""Scoring workers' speed: comments/s of N `civmon score --worker` processes on one PostgreSQL store,
each given this machine's cores / N threads, over real texts seeded as pending comments."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomli_w
from sqlalchemy import Engine, insert, select

from monitor.bench import scratch_database
from monitor.scoring.pending import count_pending
from monitor.store import schema
from monitor.store.db import make_engine, transaction
from monitor.store.models import Comment, Community, Score, Thread
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
    """Comments/s of `workers` worker processes scoring `texts` with the default model, from their start
    (model loading included, as in a real run) until every text has its score."""
    threads = max(1, len(os.sched_getaffinity(0)) // workers)
    with scratch_database(postgres_url) as url, tempfile.TemporaryDirectory() as folder:
        engine = make_engine(url)
        seed(engine, texts)
        config = worker_config(Path(folder), url, {"device": "cpu"}, {"workers": workers, "poll_seconds": 0.2})
        started = time.perf_counter()
        processes = [start_worker(config, threads, "--exit-when-idle") for _ in range(workers)]
        try:
            _wait_until_scored(engine, processes, len(texts))
            seconds = time.perf_counter() - started
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.communicate(timeout=60)
        engine.dispose()
    return len(texts) / seconds


def _wait_until_scored(engine: Engine, processes: list[subprocess.Popen[str]], total: int) -> None:
    while True:
        with transaction(engine) as session:
            version = session.scalar(select(Score.model_version).limit(1))
            if version is not None and count_pending(session, version) == 0:
                return
        if all(p.poll() is not None for p in processes):
            output = "\n".join((p.communicate()[0] or "")[-2000:] for p in processes)
            raise RuntimeError(f"every worker exited before the {total:,} comments were scored:\n{output}")
        time.sleep(0.2)
