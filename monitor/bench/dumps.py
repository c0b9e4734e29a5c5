"""Dump-import throughput and memory: lines per second, and peak memory at two file sizes
(flat memory means the larger file needs no more than the smaller one)."""

from __future__ import annotations

import json
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import zstandard

from monitor.config import PrivacySettings
from monitor.privacy import Pseudonymiser
from monitor.sources.dumps import import_dump
from monitor.store import schema
from monitor.store.db import make_engine, transaction
from monitor.store.upsert import Writer

SUBREDDITS = ("AskHistorians", "changemyview", "politics", "science")


def write_items(path: Path, items: Iterable[dict[str, Any]]) -> None:
    """Objects in the Pushshift format, one a line, streamed to a .zst file."""
    with path.open("wb") as raw, zstandard.ZstdCompressor(level=3).stream_writer(raw) as out:
        for item in items:
            out.write(json.dumps(item).encode() + b"\n")


def write_dump(path: Path, lines: int) -> None:
    """`lines` synthetic comments in the Pushshift format, streamed to a .zst file."""
    write_items(path, (_comment(i) for i in range(lines)))


def _comment(i: int) -> dict[str, Any]:
    thread = f"s{i % 5000}"
    return {
        "id": f"c{i}",
        "link_id": f"t3_{thread}",
        "parent_id": f"t1_c{i - 1}" if i % 3 == 0 and i else f"t3_{thread}",  # every third a reply
        "author": f"user{i % 9973}",
        "body": f"Comment {i}: " + "some words of a reply " * (1 + i % 12),
        "created_utc": 1_700_000_000 + i,
        "subreddit": SUBREDDITS[i % len(SUBREDDITS)],
        "score": i % 17,
    }


def _import(path: str, url: str) -> tuple[float, int, int]:
    """Run in a fresh process: (seconds, lines, peak resident memory in MiB)."""
    engine = make_engine(url)
    schema.upgrade(engine)
    privacy, pseudonymiser = PrivacySettings(), Pseudonymiser(b"bench")

    def write(ref, threads, comments) -> None:  # type: ignore[no-untyped-def]
        with transaction(engine) as session:
            Writer(session, privacy, pseudonymiser).write(ref, threads, comments)

    start = time.perf_counter()
    report = import_dump(Path(path), write, lambda position, report: None)
    return time.perf_counter() - start, report.lines, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def measure(lines: int) -> tuple[float, int, int, int]:
    """(seconds, lines, peak MiB, compressed bytes) for importing a fresh file of `lines` comments."""
    with tempfile.TemporaryDirectory() as folder:
        dump = Path(folder) / "RC_bench.ndjson.zst"
        write_dump(dump, lines)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            seconds, count, peak = pool.apply(_import, (str(dump), f"sqlite:///{Path(folder) / 'bench.db'}"))
        return seconds, count, peak, dump.stat().st_size


def report(lines: int) -> str:
    rows = []
    for n in (lines, lines * 4):
        seconds, count, peak, size = measure(n)
        rows.append(
            f"  {count:>10,} lines ({size / 2**20:,.1f} MiB .zst): {count / seconds:>8,.0f} lines/s, "
            f"peak memory {peak:,} MiB"
        )
    return "dump import into SQLite:\n" + "\n".join(rows)
