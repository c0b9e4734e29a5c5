"""Small hand-made records for store tests."""

from __future__ import annotations

from dataclasses import replace

from monitor.records import CommentRecord, CommunityRef, ItemState, ThreadRecord

COMMUNITY = CommunityRef("reddit", "testcommunity")
T0 = 1_700_000_000


def thread(n: int = 1) -> ThreadRecord:
    return ThreadRecord(
        platform_id=f"t{n}",
        title=f"Thread {n}",
        author="op_user",
        created_utc=T0,
        permalink=f"/r/testcommunity/comments/t{n}/",
        platform_score=10,
        num_comments=3,
    )


def comments(count: int, thread_id: str = "t1", first: int = 0) -> list[CommentRecord]:
    """A chain: comment i answers comment i-1, the first answers the thread."""
    return [
        CommentRecord(
            platform_id=f"c{i}",
            thread_id=thread_id,
            parent_id=thread_id if i == first else f"c{i - 1}",
            depth=i - first,
            author=f"user{i % 7}",
            body=f"Comment number {i}, with some words in it.",
            created_utc=T0 + i,
            platform_score=i % 5,
            permalink=f"/r/testcommunity/comments/{thread_id}/_/c{i}/",
        )
        for i in range(first, first + count)
    ]


def edited(record: CommentRecord, body: str) -> CommentRecord:
    return replace(record, body=body, edited_utc=record.created_utc + 60)


def gone(record: CommentRecord, state: ItemState) -> CommentRecord:
    return replace(record, body=None, author=None, state=state)
