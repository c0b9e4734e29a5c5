"""Reddit's JSON (from the API through praw, or from Pushshift-style dumps) as civmon records.

One mapping serves both: a praw object's attributes are the API's JSON fields
(`vars(comment)`), with `author` and `subreddit` turned into objects whose
`str()` is the name. Platform ids are stored without their ``t1_``/``t3_`` prefix;
a comment whose `parent_id` equals its `thread_id` answers the thread itself.

Links are built from the subreddit and ids, as paths on reddit.com: the `permalink` a
dump or the API carries is never stored, since `@evil.example/...`, `//evil.example`
or `https://elsewhere/...` there would lead readers of the dashboard off Reddit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitor.records import CommentRecord, ItemState, ThreadRecord, reddit_path

DELETED_MARKERS = {"[deleted]"}
REMOVED_MARKERS = {"[removed]", "[ Removed by Reddit ]", "[removed by reddit]"}
# removed_by_category values: who took the item down.
BY_AUTHOR = {"deleted", "author"}


def strip_prefix(fullname: str | None) -> str | None:
    """'t1_abc' -> 'abc' (ids in dumps and some API fields come either way)."""
    if fullname is None:
        return None
    return fullname.split("_", 1)[1] if fullname[:3] in ("t1_", "t3_") else fullname


def author_name(data: Mapping[str, Any]) -> str | None:
    author = data.get("author")
    name = None if author is None else str(author)
    return None if name in (None, "", "[deleted]") else name


def item_state(text: str | None, data: Mapping[str, Any]) -> ItemState:
    """Deleted by its author, removed by moderators or Reddit, or live."""
    category = data.get("removed_by_category")
    if category:
        return ItemState.DELETED if category in BY_AUTHOR else ItemState.REMOVED
    if text in REMOVED_MARKERS:
        return ItemState.REMOVED
    if text in DELETED_MARKERS:
        return ItemState.DELETED
    return ItemState.LIVE


def _edited(value: Any, created_utc: int) -> int | None:
    """False when never edited, else the edit's epoch seconds. Reddit before 2012 only said
    True: the edit time is unknown, and the creation time stands in as its lower bound."""
    if not value:  # None, False, or 0 (no time)
        return None
    return created_utc if value is True else int(float(value))


def permalink(subreddit: Any, thread_id: str, comment_id: str | None = None) -> str | None:
    """The item's path on reddit.com, or None without a subreddit."""
    return None if subreddit is None else reddit_path(str(subreddit), thread_id, comment_id)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def comment_record(data: Mapping[str, Any], depth: int | None = None) -> CommentRecord:
    body = data.get("body")
    state = item_state(body, data)
    thread_id = strip_prefix(data["link_id"])
    platform_id = strip_prefix(str(data["id"]))
    created_utc = int(float(data["created_utc"]))
    return CommentRecord(
        platform_id=platform_id,
        thread_id=thread_id,
        parent_id=strip_prefix(data.get("parent_id")),
        depth=depth if depth is not None else data.get("depth"),
        author=author_name(data) if state is ItemState.LIVE else None,
        body=body if state is ItemState.LIVE else None,
        created_utc=created_utc,
        edited_utc=_edited(data.get("edited"), created_utc),
        state=state,
        platform_score=_int(data.get("score")),
        permalink=permalink(data.get("subreddit"), thread_id, platform_id),
    )


def thread_record(data: Mapping[str, Any]) -> ThreadRecord:
    body = data.get("selftext") or None
    state = item_state(body, data)
    platform_id = strip_prefix(str(data["id"]))
    return ThreadRecord(
        platform_id=platform_id,
        title=data.get("title"),
        author=author_name(data) if state is ItemState.LIVE else None,
        created_utc=int(float(data["created_utc"])),
        body=body if state is ItemState.LIVE else None,
        url=data.get("url"),
        permalink=permalink(data.get("subreddit"), platform_id),
        platform_score=_int(data.get("score")),
        num_comments=_int(data.get("num_comments")),
        state=state,
    )


def thread_stub(data: Mapping[str, Any]) -> ThreadRecord:
    """The thread a comment belongs to, from the link_* fields the comment listing carries."""
    platform_id = strip_prefix(data["link_id"])
    return ThreadRecord(
        platform_id=platform_id,
        title=data.get("link_title"),
        author=None if data.get("link_author") in (None, "[deleted]") else str(data["link_author"]),
        created_utc=None,
        url=data.get("link_url"),
        permalink=permalink(data.get("subreddit"), platform_id),
    )
