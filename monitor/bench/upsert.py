"""Bulk-upsert throughput: how many comments per second the store takes.

Three passes over the same synthetic comments (1,000 threads, Reddit-like body
lengths): the first insert, a re-collection of the same comments (nothing changes:
the idempotent path a scheduler takes every few minutes), and a pass where 10% are
edited and 2% deleted.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from monitor.bench import scratch_database, timed
from monitor.config import PrivacySettings
from monitor.privacy import Pseudonymiser
from monitor.records import CommentRecord, CommunityRef, ItemState, ThreadRecord
from monitor.store import schema
from monitor.store.db import display_url, make_engine, transaction
from monitor.store.upsert import UpsertResult, Writer

COMMUNITY = CommunityRef("reddit", "benchmark")
THREADS = 1000
WORDS = "the a you this that people think really just because would not good point agree wrong".split()


def synthetic(count: int, seed: int = 0) -> tuple[list[ThreadRecord], list[CommentRecord]]:
    rng = random.Random(seed)
    threads = [ThreadRecord(f"s{t}", f"Thread {t}", f"op{t % 97}", 1_700_000_000 + t) for t in range(THREADS)]
    comments = []
    for i in range(count):
        thread_id = f"s{i % THREADS}"
        parent = thread_id if i < THREADS or rng.random() < 0.3 else f"c{i - THREADS}"
        words = int(rng.lognormvariate(3.0, 0.9)) + 1  # median ~20 words, a long tail of essays
        comments.append(
            CommentRecord(
                platform_id=f"c{i}",
                thread_id=thread_id,
                parent_id=parent,
                depth=i // THREADS,
                author=f"user{rng.randrange(count // 10 + 1)}",
                body=" ".join(rng.choices(WORDS, k=words)),
                created_utc=1_700_000_000 + i,
                platform_score=rng.randrange(-5, 50),
                permalink=f"/r/benchmark/comments/{thread_id}/_/c{i}/",
            )
        )
    return threads, comments


def changed(comments: list[CommentRecord], seed: int = 1) -> list[CommentRecord]:
    rng = random.Random(seed)
    out = []
    for c in comments:
        roll = rng.random()
        if roll < 0.10:
            c = replace(c, body=c.body + " (edit: typo)", edited_utc=c.created_utc + 60)
        elif roll < 0.12:
            c = replace(c, body=None, author=None, state=ItemState.DELETED)
        out.append(c)
    return out


@dataclass
class Pass:
    name: str
    seconds: float
    result: UpsertResult


def run_passes(url: str, count: int, batch: int) -> list[Pass]:
    engine = make_engine(url)
    schema.upgrade(engine)
    threads, comments = synthetic(count)
    by_thread = {t.platform_id: t for t in threads}
    privacy, pseudonymiser = PrivacySettings(), Pseudonymiser(b"benchmark key")

    def upsert(records: list[CommentRecord]) -> UpsertResult:
        total = UpsertResult()
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            batch_threads = {by_thread[c.thread_id] for c in chunk}
            with transaction(engine) as session:
                total += Writer(session, privacy, pseudonymiser).write(COMMUNITY, batch_threads, chunk)
        return total

    passes = [
        Pass("insert", *timed(lambda: upsert(comments))),
        Pass("same again", *timed(lambda: upsert(comments))),
        Pass("12% edited/deleted", *timed(lambda: upsert(changed(comments)))),
    ]
    engine.dispose()
    return passes


@contextmanager
def bench_databases(postgres_url: str | None) -> Iterator[list[str]]:
    """A SQLite file, and a database on the PostgreSQL server where one is given."""
    with scratch_database(None) as sqlite:
        if postgres_url is None:
            yield [sqlite]
            return
        with scratch_database(postgres_url) as postgres:
            yield [sqlite, postgres]


def report(url: str, count: int, passes: list[Pass]) -> str:
    lines = [f"{display_url(url).split('://')[0]}: {count:,} comments"]
    for p in passes:
        r = p.result
        lines.append(
            f"  {p.name:<20} {count / p.seconds:>10,.0f} comments/s  ({p.seconds:.1f} s; "
            f"new {r.new:,}, updated {r.updated:,}, deleted {r.deleted:,}, unchanged {r.unchanged:,})"
        )
    return "\n".join(lines)
