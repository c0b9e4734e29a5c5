"""Where a collector puts what it read: one transaction per batch, holding the records,
the checkpoints they cover and the threads whose trees they complete."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping

from sqlalchemy import Engine

from monitor.config import PrivacySettings
from monitor.privacy import Pseudonymiser
from monitor.records import CommentRecord, CommunityRef, ThreadRecord
from monitor.store.db import transaction
from monitor.store.progress import get_checkpoint, mark_refreshed, set_checkpoint, stored_threads, threads_to_refresh
from monitor.store.runs import RunCounts
from monitor.store.upsert import UpsertResult, Writer


class CommunitySink:
    def __init__(
        self,
        engine: Engine,
        privacy: PrivacySettings,
        pseudonymiser: Pseudonymiser,
        community: CommunityRef,
        community_id: int,
        counts: RunCounts,
    ) -> None:
        self.engine = engine
        self.community = community
        self.community_id = community_id
        self.counts = counts
        self._writer_args = (privacy, pseudonymiser)

    def write(
        self,
        threads: Iterable[ThreadRecord] = (),
        comments: Iterable[CommentRecord] = (),
        checkpoints: Mapping[str, str] | None = None,
        refreshed: Collection[str] = (),
    ) -> UpsertResult:
        with transaction(self.engine) as session:
            result = Writer(session, *self._writer_args).write(self.community, threads, comments)
            for stream, position in (checkpoints or {}).items():
                set_checkpoint(session, self.community_id, stream, position)
            mark_refreshed(session, self.community_id, refreshed, int(time.time()))
        self.counts.new += result.new
        self.counts.updated += result.updated
        self.counts.deleted += result.deleted
        return result

    def checkpoint(self, stream: str) -> str | None:
        with transaction(self.engine) as session:
            return get_checkpoint(session, self.community_id, stream)

    def threads_to_refresh(self, window_hours: float, limit: int) -> list[str]:
        since = int(time.time() - window_hours * 3600)
        with transaction(self.engine) as session:
            return threads_to_refresh(session, self.community_id, since, limit)

    def stored_threads(self, platform_ids: Collection[str]) -> set[str]:
        with transaction(self.engine) as session:
            return stored_threads(session, self.community_id, platform_ids)
