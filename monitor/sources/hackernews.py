"""Hacker News through its public API: no credentials, works on any machine with internet.

A community is a feed (top, new, best, ask, show). Each run reads the feed's newest
stories and walks each story's whole comment tree, least recently read stories first,
within the run's request budget. The API answers one item per request, so a tree is
walked level by level with a few requests in flight at once.
"""

from __future__ import annotations

import html
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from typing import Any

import requests

from monitor.records import CommentRecord, ItemState, ThreadRecord

PARALLEL_REQUESTS = 8
ITEM_URL = "https://news.ycombinator.com/item?id={}"


class HackerNewsClient:
    """The HN API over a session from `monitor.sources.http` (budget, retries)."""

    def __init__(self, api_url: str, session: requests.Session) -> None:
        self.api_url = api_url.rstrip("/")
        self.session = session

    def get(self, path: str) -> Any:
        response = self.session.get(f"{self.api_url}/{path}")
        response.raise_for_status()
        return response.json()

    def feed(self, name: str) -> list[int]:
        return list(self.get(f"{name}stories.json") or [])

    def item(self, item_id: int) -> dict[str, Any] | None:
        return self.get(f"item/{item_id}.json")

    def items(self, ids: list[int]) -> list[dict[str, Any]]:
        with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
            return [item for item in pool.map(self.item, ids) if item]


class _TextExtractor(HTMLParser):
    """HN comment HTML as plain text: paragraphs kept, links as their text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "p":
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(markup: str | None) -> str | None:
    if markup is None:
        return None
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return html.unescape("".join(parser.parts)).strip()


def _state(item: dict[str, Any]) -> ItemState:
    if item.get("deleted"):
        return ItemState.DELETED
    return ItemState.REMOVED if item.get("dead") else ItemState.LIVE


def story_record(item: dict[str, Any]) -> ThreadRecord:
    return ThreadRecord(
        platform_id=str(item["id"]),
        title=item.get("title"),
        author=item.get("by"),
        created_utc=int(item.get("time", 0)),
        body=html_to_text(item.get("text")),
        url=item.get("url"),
        permalink=ITEM_URL.format(item["id"]),
        platform_score=item.get("score"),
        num_comments=item.get("descendants"),
        state=_state(item),
    )


def comment_record(item: dict[str, Any], story_id: int, depth: int) -> CommentRecord:
    state = _state(item)
    return CommentRecord(
        platform_id=str(item["id"]),
        thread_id=str(story_id),
        parent_id=str(item.get("parent", story_id)),
        depth=depth,
        author=item.get("by") if state is ItemState.LIVE else None,
        body=html_to_text(item.get("text")) if state is ItemState.LIVE else None,
        created_utc=int(item.get("time", 0)),
        state=state,
        permalink=ITEM_URL.format(item["id"]),
    )


def walk_story(client: HackerNewsClient, story_id: int) -> tuple[ThreadRecord, list[CommentRecord]] | None:
    """A story and its whole comment tree, or None if the item is gone or not a story."""
    story = client.item(story_id)
    if not story or story.get("type") not in ("story", "poll", "job"):
        return None
    comments: list[CommentRecord] = []
    level, depth = list(story.get("kids") or []), 0
    while level:
        items = client.items(level)
        comments += [comment_record(item, story_id, depth) for item in items]
        level = [kid for item in items for kid in item.get("kids") or []]
        depth += 1
    return story_record(story), comments
