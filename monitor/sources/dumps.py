"""Import Reddit NDJSON dumps (Pushshift / Arctic Shift: one JSON object per line, plain or zstd).

Streams the file in batches, so memory stays flat however large it is. A bad line
(not UTF-8, not JSON, a field of the wrong type, out of range or too long for the store,
neither comment nor submission) is counted and reported with its line number and field,
never its text, and the import carries on. Writes are idempotent upserts, so importing
a file again, or again after a crash, stores nothing twice.

Every field is checked against what Reddit allows and what the store's columns hold
(lengths and integer sizes come from monitor.store.models), so a line that SQLite would
take and PostgreSQL refuse is a bad line on both. Links are built from the subreddit and
ids (monitor.sources.reddit_records), never taken from a dump's `permalink`.

Pushshift collected through Reddit's legacy JSON, which writes <, > and & as &lt;, &gt;
and &amp; (praw asks for raw text instead). Those three are undone on import, so a quoted
parent (`&gt; ...`) is a quote again; Reddit renders those entities as their characters
when an author types them, so a dump that is raw already reads the same.
"""

from __future__ import annotations

import io
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any

import zstandard
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
)
from sqlalchemy import BigInteger, Column

from monitor.errors import CivmonError
from monitor.records import CommentRecord, CommunityRef, ThreadRecord, community_name_problem
from monitor.sources.reddit_records import DELETED_MARKERS, comment_record, strip_prefix, thread_record, thread_stub
from monitor.store.models import Comment, Thread

BATCH_LINES = 2000
READ_BYTES = 1 << 20  # compressed bytes read at a time
# Pushshift's dumps are compressed with a long window; the default limit refuses them.
ZSTD_MAX_WINDOW = 2**31
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Other compressors' signatures: their files are refused by name instead of read as garbage lines.
OTHER_FORMATS = {
    b"\x1f\x8b": ("gzip", "gunzip -k"),
    b"BZh": ("bzip2", "bunzip2 -k"),
    b"\xfd7zXZ\x00": ("xz", "unxz -k"),
    b"PK\x03\x04": ("zip", "unzip"),
    b"7z\xbc\xaf\x27\x1c": ("7z", "7z x"),
}


def _not_a_bool(value: Any) -> Any:
    # pydantic's lax mode reads true as 1; a boolean where a number belongs is a wrong field, not 1970-01-01.
    # Numeric strings stay accepted: Pushshift wrote some numbers that way ("created_utc": "1234567890").
    if isinstance(value, bool):
        raise ValueError("a boolean, not a number")
    return value


NotBool = BeforeValidator(_not_a_bool)
# Epoch seconds in 32 unsigned bits (1970 to 2106): anything else is no real post's time, and would
# break dates downstream (pandas stops at 2262) even where the BIGINT column holds it.
Time = Annotated[float, NotBool, Field(ge=0, lt=2**32, allow_inf_nan=False)]
REDDIT_ID = re.compile(r"[0-9a-z]+")  # base 36
# Reddit's user names: letters, digits, '_' and '-' (not only ASCII before 2016).
USER_NAME = re.compile(r"[\w-]+")
COMMENTS, THREADS = Comment.__table__.c, Thread.__table__.c
AUTHOR_CHARS = min(COMMENTS.author.type.length, THREADS.author.type.length)  # unpseudonymised names go there


def _integer(column: Column[Any]) -> Any:
    """An int that fits `column`'s SQL integer type (PostgreSQL refuses overflow; SQLite would take it)."""
    bits = 64 if isinstance(column.type, BigInteger) else 32
    return Annotated[int, NotBool, Field(ge=-(2 ** (bits - 1)), lt=2 ** (bits - 1))]


def _reddit_id(column: Column[Any]) -> Any:
    """A base-36 id (its t1_/t3_ prefix dropped) that fits `column`."""
    length = column.type.length

    def check(value: str) -> str:
        bare = strip_prefix(value)
        if not (REDDIT_ID.fullmatch(bare) and len(bare) <= length):
            raise ValueError(f"not a Reddit id (base-36, at most {length} characters)")
        return bare

    return Annotated[str, AfterValidator(check)]


def _text(value: str) -> str:
    # A lone surrogate (a "\ud800" escape) is no character: no database, hash or encoder takes it.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("holds a lone surrogate escape (\\ud800-\\udfff), which is not text") from None
    return value


def unescape_legacy(text: str | None) -> str | None:
    """Undo exactly the legacy JSON's escaping (&amp; last); html.unescape would also rewrite "&copy=2" in a link."""
    if text is None:
        return None
    return _text(text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _subreddit(name: str) -> str:
    if problem := community_name_problem("reddit", name):
        raise ValueError(problem)
    return name


def _author(name: str) -> str:
    if name not in DELETED_MARKERS and not (USER_NAME.fullmatch(name) and len(name) <= AUTHOR_CHARS):
        raise ValueError(f"not a Reddit user name (letters, digits, '_' or '-', at most {AUTHOR_CHARS} characters)")
    return name


Subreddit = Annotated[str, AfterValidator(_subreddit)]
Author = Annotated[str, AfterValidator(_author)]
Url = Annotated[str, AfterValidator(_text)]
CommentId, ParentId = _reddit_id(COMMENTS.platform_id), _reddit_id(COMMENTS.parent_platform_id)
ThreadId = _reddit_id(THREADS.platform_id)
CommentScore = _integer(COMMENTS.platform_score)
ThreadScore, CommentCount = _integer(THREADS.platform_score), _integer(THREADS.num_comments)


class _DumpItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    subreddit: Subreddit
    author: Author | None = None
    created_utc: Time
    removed_by_category: str | None = None


class DumpComment(_DumpItem):
    id: CommentId
    link_id: ThreadId
    parent_id: ParentId | None = None
    body: str | None = None
    edited: StrictBool | Time | None = None  # JSON's true/false only: lax bool would read "yes" as true
    score: CommentScore | None = None

    _body = field_validator("body")(unescape_legacy)


class DumpSubmission(_DumpItem):
    id: ThreadId
    title: str
    selftext: str | None = None
    url: Url | None = None
    score: ThreadScore | None = None
    num_comments: CommentCount | None = None

    _texts = field_validator("title", "selftext")(unescape_legacy)


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


class DamagedDump(Exception):
    """The compressed data ends or breaks before the file does; the message says where."""


Batch = dict[str, tuple[list[ThreadRecord], list[CommentRecord]]]  # subreddit -> records
WriteBatch = Callable[[CommunityRef, list[ThreadRecord], list[CommentRecord]], None]


def dump_format(path: Path) -> str:
    """'zstd' or 'plain', from the file's first bytes (not its name); a CivmonError for anything else."""
    try:
        with path.open("rb") as raw:
            head = raw.read(8)
    except OSError as exc:
        raise CivmonError(f"cannot read {path}: {exc.strerror}", "give the paths of readable dump files") from None
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    for magic, (name, tool) in OTHER_FORMATS.items():
        if head.startswith(magic):
            raise CivmonError(
                f"{path}: {name} is not supported",
                f"decompress it (`{tool} {path}`) or recompress it as zstd (`zstd`), then import that",
            )
    if path.suffix == ".zst":
        raise CivmonError(
            f"{path}: not a zstd file (it does not start with zstd's magic number)",
            "import the dump itself, plain NDJSON or .zst; a download cut short or an error page looks like this",
        )
    return "plain"


class _ZstdFrames(io.RawIOBase):
    """zstd data, frame after frame. zstandard's stream reader ends quietly where a file cut short ends;
    this one raises DamagedDump there, since the rest of the dump is missing."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._frame = self._decompressor.decompressobj()
        self._in_frame = False
        self._out = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._out:
            data = self._raw.read(READ_BYTES)
            if not data:
                if self._in_frame:
                    raise DamagedDump(f"truncated at byte {self._raw.tell():,} (it ends inside a zstd frame)")
                return 0
            self._out = memoryview(self._decompress(data))
        size = min(len(buffer), len(self._out))
        buffer[:size] = self._out[:size]
        self._out = self._out[size:]
        return size

    def _decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            try:
                out.append(self._frame.decompress(data))
            except zstandard.ZstdError as exc:
                end = self._raw.tell()
                raise DamagedDump(f"corrupt between bytes {end - len(data):,} and {end:,} ({exc})") from None
            self._in_frame = not self._frame.eof
            if self._in_frame:
                break
            data, self._frame = self._frame.unused_data, self._decompressor.decompressobj()  # the next frame
        return b"".join(out)


def open_dump(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    """(lines to read, the raw file whose position tells progress in bytes)."""
    kind = dump_format(path)
    raw = path.open("rb")
    if kind == "plain":
        return raw, raw
    return io.BufferedReader(_ZstdFrames(raw), buffer_size=READ_BYTES), raw


def parse_line(line: bytes) -> DumpComment | DumpSubmission:
    """One dump line as a typed item; ValueError says why it is not one, naming fields but never quoting the line."""
    try:
        obj: Any = json.loads(line)
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg}, column {exc.colno})") from None
    except (ValueError, RecursionError):  # a number of over 4,300 digits; arrays nested thousands deep
        raise ValueError("not JSON that can be read (a number too long or nesting too deep)") from None
    if not isinstance(obj, dict):
        raise ValueError(f"a JSON {type(obj).__name__}, not an object")
    model = DumpComment if "link_id" in obj else DumpSubmission if "title" in obj else None
    if model is None:
        raise ValueError("neither a comment (no link_id) nor a submission (no title)")
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise ValueError(f"wrong fields: {_problems(exc)}") from None


def _problems(exc: ValidationError) -> str:
    """Each wrong field once, with pydantic's messages (which never quote the input)."""
    messages: dict[str, list[str]] = defaultdict(list)
    for error in exc.errors():
        messages[str(error["loc"][0])].append(error["msg"].removeprefix("Value error, "))  # ours say what is wrong
    return "; ".join(f"{name}: {' / '.join(dict.fromkeys(found))}" for name, found in messages.items())


def import_dump(path: Path, write: WriteBatch, advance: Callable[[int, ImportReport], None]) -> ImportReport:
    """Stream `path` into `write`, one batch per subreddit every BATCH_LINES lines.

    `advance(bytes_position, report)` is called after each batch, for a progress display.
    Compressed data that ends or breaks early is a CivmonError, after what was read before is written.
    """
    report = ImportReport()
    lines, raw = open_dump(path)
    with raw, lines:
        try:
            for batch in _batches(lines, report):
                for subreddit, (threads, comments) in batch.items():
                    write(CommunityRef("reddit", subreddit), threads, comments)
                advance(raw.tell(), report)
        except DamagedDump as exc:
            raise CivmonError(
                f"{path}: {exc}: the {report.lines:,} lines before it are imported ({report.comments:,} comments, "
                f"{report.threads:,} submissions, {len(report.bad):,} bad lines), the rest of the file is missing",
                "get the file again (compare its size or checksum with the source's), then import it again: "
                "what is stored already is not stored twice",
            ) from None
    return report


def _batches(lines: IO[bytes], report: ImportReport) -> Iterator[Batch]:
    batch: Batch = defaultdict(lambda: ([], []))
    try:
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
    except DamagedDump:
        yield batch  # what was read before the damage is stored
        raise
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
