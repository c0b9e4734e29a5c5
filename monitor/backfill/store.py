"""--into-store: a backfill's dumps and scores into the configured database, for the dashboard and `civmon metrics`.

It runs on the client, after the workers are done, from the dumps and the Parquet they wrote: the records
go in through `civmon import`'s own path (the same validation, pseudonyms and idempotent upserts), then
each stored live comment gets its score from the partition files, as `civmon score` would have written
it. The workers stay database-free (a cluster's nodes need neither credentials nor a route to the
database), and one writer is what the database takes fastest anyway. Both steps are idempotent, so an
interrupted --into-store is simply run again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import Engine, select

from monitor.backfill.partitions import folder_name
from monitor.config import Settings
from monitor.errors import CivmonError
from monitor.records import CommunityRef, ItemState
from monitor.scoring.pending import register, write_scores
from monitor.scoring.results import Result
from monitor.sources.collect import import_dumps
from monitor.store.db import database_now, transaction
from monitor.store.models import Comment
from monitor.store.upsert import IN_CHUNK, community_id

RESULT_COLUMNS = ["comment_id", "community", "alliance", "language", "skip_reason"]


@dataclass(frozen=True)
class ModelInfo:
    """The workers' model, as `register` records it (the client never loads it)."""

    version: str
    name: str
    dimensions: tuple[str, ...]
    thresholds: dict[str, float] = field(default_factory=dict)


@dataclass
class StoreSummary:
    comments: int = 0
    scores: int = 0
    problems: list[str] = field(default_factory=list)


def into_store(
    settings: Settings, engine: Engine, dumps: list[Path], out: Path, model: ModelInfo, emit: Callable[[str], None]
) -> StoreSummary:
    summary = StoreSummary()
    with transaction(engine) as session:
        register(session, model)  # type: ignore[arg-type]  # what register reads of a scorer
    for path in dumps:
        emit(f"storing {path.name}...")
        try:
            reports = import_dumps(settings, engine, [path], lambda *_: None)
            summary.comments += reports[path].comments
        except CivmonError as exc:  # a damaged dump: what came before the damage is stored
            summary.problems.append(exc.message)
        for part in sorted((out / folder_name(path)).glob("part-*.parquet")):
            summary.scores += _store_scores(engine, part, model, settings)
    return summary


def _store_scores(engine: Engine, part: Path, model: ModelInfo, settings: Settings) -> int:
    table = pq.read_table(part, columns=[*RESULT_COLUMNS, *model.dimensions])
    by_community: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in table.to_pylist():
        if row["comment_id"] is not None:
            by_community[row["community"]][row["comment_id"]] = row
    stored = 0
    with transaction(engine) as session:
        now = database_now(session)  # the rollups' watermark reads the database's clock
        for community, rows in by_community.items():
            ref = CommunityRef("reddit", community)
            for live in _live_comments(session, community_id(session, ref), list(rows)):
                results = [_result(rows[c.platform_id], model) for c in live]
                stored += len(live) - len(write_scores(session, model.version, live, results, settings.privacy, now))
    return stored


def _live_comments(session: Any, community: int, platform_ids: list[str]) -> Iterator[list[Any]]:
    """The stored live comments among these, in chunks: deleted and removed ones are never scored."""
    for start in range(0, len(platform_ids), IN_CHUNK):
        query = select(Comment.id, Comment.platform_id, Comment.body_hash).where(
            Comment.community_id == community,
            Comment.platform_id.in_(platform_ids[start : start + IN_CHUNK]),
            Comment.state == ItemState.LIVE,
        )
        if found := session.execute(query).all():
            yield found


def _result(row: dict[str, Any], model: ModelInfo) -> Result:
    if row["skip_reason"] is not None:
        return Result(None, None, row["language"], row["skip_reason"])
    return Result({d: row[d] for d in model.dimensions}, row["alliance"], row["language"])
