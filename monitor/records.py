"""The small typed records that sources yield and the store writes.

They live below both stages, so that neither imports the other for them."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ItemState(enum.StrEnum):
    LIVE = "live"
    DELETED = "deleted"  # removed by its author
    REMOVED = "removed"  # removed by moderators or the platform


@dataclass(frozen=True, slots=True)
class CommunityRef:
    platform: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.platform}/{self.name}"


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    """A submission or story. `author` is the platform's user name: the store pseudonymises it.
    A record without `created_utc` is a stub (known only from one of its comments): it creates
    the thread if unknown and never overwrites what is stored."""

    platform_id: str
    title: str | None
    author: str | None
    created_utc: int | None
    body: str | None = None
    url: str | None = None
    permalink: str | None = None
    platform_score: int | None = None
    num_comments: int | None = None
    state: ItemState = ItemState.LIVE

    @property
    def is_stub(self) -> bool:
        return self.created_utc is None


@dataclass(frozen=True, slots=True)
class CommentRecord:
    """A comment. `thread_id` is its thread's platform id; `parent_id` the platform id of the
    comment or thread it answers; `depth` 0 for a top-level comment."""

    platform_id: str
    thread_id: str
    parent_id: str | None
    depth: int | None
    author: str | None
    body: str | None
    created_utc: int
    edited_utc: int | None = None
    state: ItemState = ItemState.LIVE
    platform_score: int | None = None
    permalink: str | None = None
