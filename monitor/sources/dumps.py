"""Import Reddit NDJSON dumps (Pushshift / Arctic Shift: one JSON object per line, plain or .zst).

Streams the file in batches, so memory stays flat however large it is. A bad line
(not UTF-8, not JSON, wrong types, neither comment nor submission) is counted and
reported with its line number, and the import carries on. Writes are idempotent
upserts, so importing a file again, or again after a crash, stores nothing twice.

Pushshift collected through Reddit's legacy JSON, which writes <, > and & as &lt;, &gt;
and &amp; (praw asks for raw text instead). Those three are undone on import, so a quoted
parent (`&gt; ...`) is a quote again; Reddit renders those entities as their characters
when an author types them, so a dump that is raw already reads the same.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import zstandard
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from monitor.records import CommentRecord, CommunityRef, ThreadRecord
from monitor.sources.reddit_records import comment_record, thread_record, thread_stub

BATCH_LINES = 2000
# Pushshift's dumps are compressed with a long window; the default limit refuses them.
ZSTD_MAX_WINDOW = 2**31


class _DumpItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    subreddit: str
    author: str | None = None
    created_utc: float
    score: int | None = None
    permalink: str | None = None
    removed_by_category: str | None = None


def _unescaped(text: str | None) -> str | None:
    """Undo exactly the legacy JSON's escaping (&amp; last); html.unescape would also rewrite "&copy=2" in a link."""
    if text is None:
        return None
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


class DumpComment(_DumpItem):
    link_id: str
    parent_id: str | None = None
    body: str | None = None
    edited: bool | float | None = None

    _body = field_validator("body")(_unescaped)


class DumpSubmission(_DumpItem):
    title: str
    selftext: str | None = None
    url: str | None = None
    num_comments: int | None = None

    _texts = field_validator("title", "selftext")(_unescaped)


@dataclass
class BadLine:
    number: int
    reason: str


@dataclass
class ImportReport:
    lines: int = 0
    comments: int = 0
    threads: int = 0
    bad: list[BadLine] = field(default_factory=list)


Batch = dict[str, tuple[list[ThreadRecord], list[CommentRecord]]]  # subreddit -> records
WriteBatch = Callable[[CommunityRef, list[ThreadRecord], list[CommentRecord]], None]


def open_dump(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    """(lines to read, the raw file whose position tells progress in bytes)."""
    raw = path.open("rb")
    if path.suffix != ".zst":
        return raw, raw
    reader = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_reader(raw)
    return io.BufferedReader(reader), raw


def parse_line(line: bytes) -> DumpComment | DumpSubmission:
    """One dump line as a typed item; ValueError says why it is not one."""
    try:
        obj: Any = json.loads(line)
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"a JSON {type(obj).__name__}, not an object")
    model = DumpComment if "link_id" in obj else DumpSubmission if "title" in obj else None
    if model is None:
        raise ValueError("neither a comment (no link_id) nor a submission (no title)")
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"wrong fields: {problems}") from None


def import_dump(path: Path, write: WriteBatch, advance: Callable[[int, ImportReport], None]) -> ImportReport:
    """Stream `path` into `write`, one batch per subreddit every BATCH_LINES lines.

    `advance(bytes_position, report)` is called after each batch, for a progress display.
    """
    report = ImportReport()
    lines, raw = open_dump(path)
    with raw, lines:
        for batch in _batches(lines, report):
            for subreddit, (threads, comments) in batch.items():
                write(CommunityRef("reddit", subreddit), threads, comments)
            advance(raw.tell(), report)
    return report


def _batches(lines: IO[bytes], report: ImportReport) -> Iterator[Batch]:
    batch: Batch = defaultdict(lambda: ([], []))
    for number, line in enumerate(lines, start=1):
        report.lines = number
        if not line.strip():
            continue
        try:
            item = parse_line(line)
        except ValueError as exc:
            report.bad.append(BadLine(number, str(exc)))
            continue
        _add(batch, item, report)
        if number % BATCH_LINES == 0:
            yield batch
            batch = defaultdict(lambda: ([], []))
    if batch:
        yield batch


def _add(batch: Batch, item: DumpComment | DumpSubmission, report: ImportReport) -> None:
    threads, comments = batch[item.subreddit]
    data = item.model_dump()
    if isinstance(item, DumpComment):
        comments.append(comment_record(data))
        threads.append(thread_stub(data))
        report.comments += 1
    else:
        threads.append(thread_record(data))
        report.threads += 1
