"""`civmon export`: comment-level scores and rollups as CSV and Parquet, with a data dictionary.

Authors are the stored pseudonyms; bodies are included only where the privacy settings
keep them. Rows are streamed in batches, so exports of millions of comments stay in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import Engine, and_, select
from sqlalchemy.orm import Session

from monitor.metrics.rollups import stats
from monitor.scoring.base import DIMENSIONS
from monitor.store.models import Comment, Community, Rollup, Score, Thread

BATCH = 20_000
ESTIMATES = ("hostility", "hostile_share", "respect", "warmth", "alliance")
COMMENT_COLUMNS = {
    "community": "platform/name of the community",
    "thread_id": "the thread's platform id (Reddit submission id without t3_, or Hacker News story id)",
    "comment_id": "the comment's platform id (Reddit id without t1_, or Hacker News item id)",
    "parent_id": "platform id of the comment or thread it answers (equal to thread_id: a top-level comment)",
    "depth": "0 for a top-level comment, 1 for a reply to one, ...; empty where unknown",
    "author": "keyed-hash pseudonym of the author (stable with the same key); empty for deleted authors",
    "created_utc": "creation time, seconds since 1970-01-01 UTC",
    "edited_utc": "time of the last edit, if edited (for old Reddit data: the creation time, the edit's lower bound)",
    "state": "live, deleted (by its author) or removed (by moderators or the platform)",
    "platform_score": "the platform's vote score when last collected",
    "permalink": "link to the comment on its platform",
    "body": "the comment's text (only when [privacy] keep_bodies is true)",
    "model_version": "the model that produced the scores (encoder + heads fingerprint, or hub id + revision)",
    **{
        d: f"{d.replace('_', ' ')} score in [0, 1] (empty: the model does not provide it, or did not score)"
        for d in DIMENSIONS
    },
    "alliance": "alliance index in [-1, 1]: mean(respect, warmth) - hostility",
    "language": "the comment's language where detected; non-English comments are not scored",
    "skip_reason": "why the comment has no scores (empty, [removed], not English, ...); empty when it was scored",
}
ROLLUP_COLUMNS = {
    "community": "platform/name of the community",
    "bucket": "hour, day or week (weeks start on Monday), UTC",
    "start_utc": "the bucket's start, seconds since 1970-01-01 UTC",
    "comments": "comments created in the bucket",
    "scored": "of those, comments with a hostility score",
    **{
        f"{m}{s}": f"{m.replace('_', ' ')}: {w}"
        for m in ("hostility", "hostile_share", "respect", "warmth", "alliance")
        for s, w in (("", "estimate"), ("_low", "95% interval, lower end"), ("_high", "95% interval, upper end"))
    },
    "model_version": "the model whose scores these are",
}


INTEGERS = {"depth", "created_utc", "edited_utc", "platform_score", "start_utc", "comments", "scored"}
FLOATS = {
    *DIMENSIONS,
    "alliance",
    *(
        c
        for c in ROLLUP_COLUMNS
        if c.split("_low")[0].split("_high")[0] in ("hostility", "hostile_share", "respect", "warmth", "alliance")
    ),
}


def schema(columns: Sequence[str]) -> pa.Schema:
    """Explicit column types: a batch whose first rows are all empty must not fix a column as null-typed."""
    return pa.schema(
        [(c, pa.int64() if c in INTEGERS else pa.float64() if c in FLOATS else pa.string()) for c in columns]
    )


@dataclass(frozen=True)
class Filters:
    model_version: str
    communities: Sequence[str] = ()  # platform/name or name; empty: all
    since: int | None = None
    until: int | None = None


def _community_filter(filters: Filters) -> list:  # type: ignore[type-arg]
    if not filters.communities:
        return []
    return [Community.key.in_(filters.communities) | Community.name.in_(filters.communities)]


def comment_batches(session: Session, filters: Filters, with_bodies: bool) -> Iterator[pa.RecordBatch]:
    columns = [c for c in COMMENT_COLUMNS if with_bodies or c != "body"]
    query = (
        select(
            Community.key.label("community"),
            Thread.platform_id.label("thread_id"),
            Comment.platform_id.label("comment_id"),
            Comment.parent_platform_id.label("parent_id"),
            Comment.depth,
            Comment.author,
            Comment.created_utc,
            Comment.edited_utc,
            Comment.state,
            Comment.platform_score,
            Comment.permalink,
            Comment.body,
            Score.model_version,
            *(Score.__table__.c[d] for d in DIMENSIONS),
            Score.alliance,
            Score.language,
            Score.skip_reason,
        )
        .join(Community, Community.id == Comment.community_id)
        .join(Thread, Thread.id == Comment.thread_id)
        .outerjoin(Score, and_(Score.comment_id == Comment.id, Score.model_version == filters.model_version))
        .where(*_community_filter(filters), *_period(Comment.created_utc, filters))
        .order_by(Comment.id)
        .execution_options(yield_per=BATCH)
    )
    types = schema(columns)
    for partition in session.execute(query).partitions():
        rows = [dict(r._mapping) for r in partition]
        for r in rows:
            r["state"] = str(r["state"])
        yield pa.RecordBatch.from_pylist([{c: r[c] for c in columns} for r in rows], schema=types)


def _period(column: object, filters: Filters) -> list:  # type: ignore[type-arg]
    bounds = []
    if filters.since is not None:
        bounds.append(column >= filters.since)  # type: ignore[operator]
    if filters.until is not None:
        bounds.append(column < filters.until)  # type: ignore[operator]
    return bounds


def rollup_rows(session: Session, filters: Filters) -> Iterator[dict[str, object]]:
    query = (
        select(Community.platform, Community.name, Rollup)
        .join(Community, Community.id == Rollup.community_id)
        .where(
            Rollup.model_version == filters.model_version,
            *_community_filter(filters),
            *_period(Rollup.start_utc, filters),
        )
        .order_by(Community.name, Rollup.bucket, Rollup.start_utc)
    )
    for platform, name, row in session.execute(query):
        s = stats(row)
        out: dict[str, object] = {
            "community": f"{platform}/{name}",
            "bucket": row.bucket,
            "start_utc": row.start_utc,
            "comments": row.comments,
            "scored": row.scored,
        }
        for metric in ESTIMATES:
            e = getattr(s, metric)
            out |= {
                metric: e.value if e else None,
                f"{metric}_low": e.low if e else None,
                f"{metric}_high": e.high if e else None,
            }
        out["model_version"] = filters.model_version
        yield out


def write(batches: Iterator[pa.RecordBatch], folder: Path, name: str, formats: Sequence[str]) -> list[Path]:
    """Stream record batches into NAME.csv and/or NAME.parquet."""
    first = next(batches, None)
    if first is None:
        return []
    paths, writers = [], []
    if "csv" in formats:
        paths.append(folder / f"{name}.csv")
        writers.append(pacsv.CSVWriter(paths[-1], first.schema))
    if "parquet" in formats:
        paths.append(folder / f"{name}.parquet")
        writers.append(pq.ParquetWriter(paths[-1], first.schema))
    for batch in (first, *batches):
        for writer in writers:
            writer.write_batch(batch)
    for writer in writers:
        writer.close()
    return paths


def export(engine: Engine, filters: Filters, folder: Path, formats: Sequence[str], with_bodies: bool) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    with Session(engine) as session:
        written = write(comment_batches(session, filters, with_bodies), folder, "comments", formats)
        rows = list(rollup_rows(session, filters))  # one row per bucket: small
        rollup_batch = iter([pa.RecordBatch.from_pylist(rows, schema=schema(list(ROLLUP_COLUMNS)))] if rows else [])
        written += write(rollup_batch, folder, "rollups", formats)
    dictionary = folder / "DATA_DICTIONARY.md"
    dictionary.write_text(data_dictionary(filters, with_bodies))
    return [*written, dictionary]


def data_dictionary(filters: Filters, with_bodies: bool) -> str:
    lines = [
        "# civmon export: data dictionary",
        "",
        f"Model version: `{filters.model_version}`.",
        "",
        "## comments (one row per comment)",
        "",
        "| column | meaning |",
        "|---|---|",
    ]
    lines += [f"| {c} | {m} |" for c, m in COMMENT_COLUMNS.items() if with_bodies or c != "body"]
    lines += [
        "",
        "## rollups (one row per community, bucket and bucket start)",
        "",
        "| column | meaning |",
        "|---|---|",
    ]
    lines += [f"| {c} | {m} |" for c, m in ROLLUP_COLUMNS.items()]
    lines += [
        "",
        "Means carry 95% Student t intervals, shares 95% Wilson intervals. Metric definitions and the "
        "minimum samples below which the dashboard hides them: `monitor/metrics/definitions.py`.",
    ]
    return "\n".join(lines) + "\n"
