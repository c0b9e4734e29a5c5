"""The small typed records that sources yield and the store writes.

They live below both stages, so that neither imports the other for them."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import quote


class ItemState(enum.StrEnum):
    LIVE = "live"
    DELETED = "deleted"  # removed by its author
    REMOVED = "removed"  # removed by moderators or the platform


# Reddit's own rules for subreddit names (reddit-archive/reddit, r2/models/subreddit.py), plus what dumps hold:
REDDIT_NAMES = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9_]{2,20}"  # every subreddit made since 2008: 3-21 letters, digits, underscores
    r"|[a-z]{2}"  # the early language subreddits (de, fr, nl)
    r"|t:[A-Za-z0-9][A-Za-z0-9_]{2,22}"  # r2's 't:' (time) subreddits
    r"|u_[A-Za-z0-9_-]{3,20}"  # a user's profile (u_ + user name, which may hold '-')
    r"|reddit\.com"  # the original front page, in dumps up to 2011
)
# A Hacker News community is one of its story feeds.
HN_FEEDS = ("top", "new", "best", "ask", "show")
# A community of comments sent to `civmon serve`, named by the caller's Perspective `communityId`.
API_NAMES = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
NAME_RULES = {
    "reddit": "a subreddit name is 3-21 letters, digits or underscores (or a u_ profile), without 'r/'",
    "hackernews": f"a Hacker News community is one of the feeds {', '.join(HN_FEEDS)}",
    "api": "an API community (communityId) is 1-64 letters, digits, '.', '_', ':' or '-', from a letter or digit",
}


def community_name_problem(platform: str, name: str) -> str | None:
    """Why `name` cannot name a community on `platform`, or None. The reason never quotes the name,
    which may come from a dump (internet text): callers add it where it is the user's own."""
    if platform == "reddit" and REDDIT_NAMES.fullmatch(name):
        return None
    if platform == "hackernews" and name in HN_FEEDS:
        return None
    if platform == "api" and API_NAMES.fullmatch(name):
        return None
    return NAME_RULES.get(platform, f"unknown platform (one of {', '.join(NAME_RULES)})")


REDDIT = "https://www.reddit.com"
HN_ITEM = "https://news.ycombinator.com/item?id={}"


def reddit_path(subreddit: str, thread_id: str, comment_id: str | None = None) -> str:
    """An item's path on reddit.com (`/r/NAME/comments/THREAD/_/COMMENT/`). Each part is percent-encoded,
    so no value can end the path, add a segment or name another host."""
    path = f"/r/{quote(subreddit, safe='')}/comments/{quote(thread_id, safe='')}/"
    return f"{path}_/{quote(comment_id, safe='')}/" if comment_id else path


def original_url(platform: str, community: str, thread_id: str, comment_id: str | None = None) -> str | None:
    """The original of a thread or comment on its platform, built from ids, never from a stored permalink:
    stored text could point anywhere (javascript:, a tracking host, `reddit.com@evil.example`). None for a
    comment sent to the API: civmon does not know where its caller shows it."""
    if platform == "reddit":
        return REDDIT + reddit_path(community, thread_id, comment_id)
    if platform == "hackernews":
        return HN_ITEM.format(quote(comment_id or thread_id, safe=""))
    return None


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
