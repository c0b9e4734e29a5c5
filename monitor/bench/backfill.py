"""Backfill speed: comments/s of `civmon backfill` with 1 and 2 local Dask workers on the same dump of real
Reddit comments (GoEmotions), and, given a PostgreSQL server, of 1 and 2 `civmon score --worker` processes
on the same texts; each with its ratio to one process. The backfill's rate runs from its first task to its
last (the cluster's start and the model's loading, seconds each, are timed apart)."""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from monitor.backfill.run import Options, backfill
from monitor.bench import timed
from monitor.bench.dumps import write_items
from monitor.config import ModelSettings, PrivacySettings, Settings
from monitor.scoring import datasets
from monitor.scoring.workers import cores

Emit = Callable[[str], None]
PARTITION_ROWS = 1_000  # 20 partitions of the default 20,000: both workers busy until the end


def real_texts(count: int) -> tuple[list[str], str]:
    """`count` real Reddit comments (GoEmotions train), repeated where the set is smaller; and what they are."""
    texts = [e.text for e in datasets.load("goemotions_hostile", "train")]
    repeats = -(-count // len(texts))
    note = f"GoEmotions train, {len(texts):,} comments" + (f", repeated {repeats}x" if repeats > 1 else "")
    return (texts * repeats)[:count], note


def write_dump(path: Path, texts: list[str]) -> None:
    """The texts as a Pushshift comment dump, escaped as Pushshift's legacy JSON is (the import undoes it)."""
    write_items(path, (_comment(i, text) for i, text in enumerate(texts)))


def _comment(i: int, text: str) -> dict[str, object]:
    body = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    item = {"id": f"b{i:x}", "link_id": "t3_bench", "subreddit": "bench", "created_utc": 1_500_000_000 + i}
    return item | {"author": f"user{i % 997}", "body": body}


def backfill_rate(dump: Path, folder: Path, workers: int) -> tuple[float, float]:
    """(comments/s from the first task to the last, seconds of the whole run)."""
    key = folder / "civmon.key"
    key.write_text(secrets.token_hex(32))
    key.chmod(0o600)
    settings = Settings(model=ModelSettings(device="cpu"), privacy=PrivacySettings(key_file=key))
    moments: list[tuple[float, int]] = []  # (when, rows done) at each finished partition
    options = Options([dump], folder / "out", partition_rows=PARTITION_ROWS, workers=workers)
    seconds, _ = timed(
        lambda: backfill(
            settings, options, lambda line: None, lambda done, _: moments.append((time.perf_counter(), done))
        )
    )
    (first, rows_first), (last, rows_last) = moments[0], moments[-1]
    return (rows_last - rows_first) / (last - first), seconds  # the rows scored between the two moments


def report(count: int, postgres_url: str | None, emit: Emit) -> None:
    texts, note = real_texts(count)
    emit(f"{len(texts):,} real Reddit comments ({note}); {cores()} cores")
    with tempfile.TemporaryDirectory() as scratch:
        dump = Path(scratch) / "RC_bench.ndjson.zst"
        write_dump(dump, texts)
        rates = {}
        for workers in (1, 2):
            folder = Path(scratch) / f"run-{workers}"
            folder.mkdir()
            rates[workers], whole = backfill_rate(dump, folder, workers)
            emit(
                f"  civmon backfill, {workers} local Dask worker(s): {rates[workers]:>6,.0f} comments/s "
                f"({rates[workers] / rates[1]:.2f}x one worker); whole run {whole:,.0f} s with cluster start"
            )
    if postgres_url:
        from monitor.bench.workers import measure

        rates = {}
        for workers in (1, 2):
            rates[workers] = measure(postgres_url, texts, workers)
            emit(
                f"  civmon score --worker on PostgreSQL, {workers} process(es): {rates[workers]:>6,.0f} comments/s "
                f"({rates[workers] / rates[1]:.2f}x one process)"
            )
