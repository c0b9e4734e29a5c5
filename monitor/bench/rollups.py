"""Rollup speed: full rebuild at two sizes, and the incremental refresh after 1,000 new scored
comments into the larger store (the goal: at most 1/50 of the full rebuild)."""

from __future__ import annotations

import json
import random
import time

from sqlalchemy import Engine, insert

from monitor.bench import scratch_database, timed
from monitor.metrics.rollups import rebuild, refresh
from monitor.scoring.base import alliance_index
from monitor.store import schema
from monitor.store.db import make_engine, transaction
from monitor.store.models import Comment, Community, ModelVersion, Score, Thread

MODEL = "bench@1"
START = 1_700_000_000
SPREAD_S = 30  # one comment every 30 s: 1M comments span about a year
THREADS = 5_000
CHUNK = 50_000


def fill(engine: Engine, first: int, count: int, seen_utc: int, seed: int = 0) -> None:
    """Comments `first`..`first+count` with scores, written in bulk (no diffing: a benchmark fixture)."""
    rng = random.Random(seed)
    for start in range(first, first + count, CHUNK):
        ids = range(start, min(start + CHUNK, first + count))
        with transaction(engine) as session:
            session.execute(
                insert(Comment),
                [
                    {
                        "id": i + 1,
                        "community_id": 1 + i % 3,
                        "thread_id": 1 + i % THREADS,
                        "platform_id": f"c{i}",
                        "parent_platform_id": f"s{i % THREADS}",
                        "depth": 0,
                        "author": f"a{rng.randrange(20_000)}",
                        "body": None,
                        "body_hash": None,
                        "state": "live",
                        "created_utc": START + i * SPREAD_S,
                        "first_seen_utc": seen_utc,
                        "last_seen_utc": seen_utc,
                    }
                    for i in ids
                ],
            )
            session.execute(
                insert(Score),
                [
                    {
                        "comment_id": i + 1,
                        "model_version": MODEL,
                        **scores,
                        "alliance": alliance_index(scores),
                        "stale": False,
                        "scored_utc": seen_utc,
                    }
                    for i in ids
                    for h in [rng.betavariate(2, 6)]
                    for scores in [{"hostility": h, "respect": 1 - h, "warmth": rng.random()}]
                ],
            )


def prepare(engine: Engine, count: int) -> None:
    schema.upgrade(engine)
    with transaction(engine) as session:
        session.execute(
            insert(Community),
            [{"id": c, "platform": "reddit", "name": f"bench{c}", "created_utc": 0} for c in (1, 2, 3)],
        )
        session.execute(
            insert(Thread),
            [
                {
                    "id": t + 1,
                    "community_id": 1 + t % 3,
                    "platform_id": f"s{t}",
                    "created_utc": START,
                    "first_seen_utc": 0,
                    "last_seen_utc": 0,
                }
                for t in range(THREADS)
            ],
        )
        session.add(
            ModelVersion(
                version=MODEL, name="bench", created_utc=0, details=json.dumps({"thresholds": {"hostility": 0.5}})
            )
        )
    fill(engine, 0, count, seen_utc=100)


def report(sizes: list[int], postgres_url: str | None) -> str:
    lines = []
    for size in sizes:
        with scratch_database(postgres_url) as url:
            engine = make_engine(url)
            prepare(engine, size)
            full, _ = timed(lambda e=engine: rebuild(e, MODEL))
            line = f"  {size:>9,} comments: full rebuild {full:6.2f} s"
            if size == max(sizes):
                fill(engine, size, 1000, seen_utc=int(time.time()), seed=1)  # 1,000 new comments, scored
                incremental, _ = timed(lambda e=engine: refresh(e, MODEL))
                line += f"; incremental refresh after 1,000 new {incremental:6.3f} s (1/{full / incremental:,.0f})"
            lines.append(line)
            engine.dispose()
    backend = "PostgreSQL" if postgres_url else "SQLite"
    return f"rollups on {backend} (3 communities; hour, day and week buckets):\n" + "\n".join(lines)
