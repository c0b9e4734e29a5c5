"""The inputs of a backfill: Reddit dumps and research corpora, counted and read one partition at a time.

A file is a Reddit dump (Pushshift / Arctic Shift NDJSON) when it is zstd-compressed, when its name starts
with RC_ or RS_ (the dumps' own names), or when its first record carries Pushshift's fields (`subreddit`, and
`link_id` with `body`, or `title`); its lines are read with `civmon import`'s validators and a comment's text is
its `body`. Any other .csv, .jsonl, .ndjson or .json file is a corpus, read as `civmon score --input`
reads it, its text in --text-column.

A dump's records are its lines (numbered from 1, as `civmon import` reports them; a blank line is no
record); a corpus's are its rows, numbered as `civmon score --input` numbers them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from monitor.errors import CivmonError
from monitor.privacy import Pseudonymiser
from monitor.records import ItemState
from monitor.scoring.files import Row, no_text_field, read_rows
from monitor.sources.dumps import READ_BYTES, DamagedDump, DumpSubmission, dump_format, open_dump, parse_line
from monitor.sources.reddit_records import comment_record
from monitor.store.upsert import clean_text

Kind = Literal["dump", "corpus"]
CORPUS_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json")
DUMP_PREFIXES = ("RC_", "RS_")
SUBMISSION = "a submission: civmon scores comments"
BAD_LINE = "bad line: "  # how a bad line's skip_reason starts
SNIFFED_LINES = 100  # a dump is refused when none of these is a comment or submission


@dataclass(frozen=True)
class Count:
    records: int  # a dump's lines (blank ones too: they keep the numbering), a corpus's rows
    damage: str | None = None  # where a compressed dump breaks off; the lines before it are counted


@dataclass(frozen=True)
class Record:
    line: int  # a dump's line number, a corpus's row number
    fields: dict[str, Any]  # comment_id, thread_id, parent_id, community, created_utc, author
    row: Row  # the text to score, or why there is none


def input_kind(path: Path) -> Kind:
    """Dump or corpus (module docstring); a CivmonError for a file neither can read."""
    if not path.is_file():
        raise CivmonError(f"{path} is not a file", "give Reddit dumps (.zst, .ndjson) or .csv/.jsonl/.json corpora")
    if path.suffix.lower() in (".csv", ".json"):
        return "corpus"
    if dump_format(path) == "zstd" or path.name.startswith(DUMP_PREFIXES):
        return "dump"
    if path.suffix.lower() in CORPUS_SUFFIXES and not _looks_like_a_dump(path):
        return "corpus"
    return "dump"


def _looks_like_a_dump(path: Path) -> bool:
    with path.open("rb") as handle:
        first = next((line for line in handle if line.strip()), b"")
    try:
        record = json.loads(first)
    except ValueError:
        return False
    # a dump's comment has its text in `body`: a corpus with Reddit's ids beside its own text field is a corpus
    return (
        isinstance(record, dict)
        and "subreddit" in record
        and ({"link_id", "body"} <= record.keys() or "title" in record)
    )


def check_dump(path: Path) -> None:
    """Refuses a file read as a dump (zstd, or of no corpus type) none of whose first lines is a Reddit comment or
    submission, a .tsv or a compressed corpus, before a cluster scores it into rows of bad lines."""
    problems: list[tuple[int, str]] = []  # (line number, why), for the lines that are not blank
    lines, raw = open_dump(path)
    with raw, lines:
        try:
            for number, line in islice(((n, line) for n, line in enumerate(lines, 1) if line.strip()), SNIFFED_LINES):
                try:
                    parse_line(line)
                    return
                except ValueError as exc:
                    problems.append((number, str(exc)))
        except DamagedDump:
            return  # the counting tells where it breaks off, and the lines before it are scored
    if problems:  # an empty file is no mistake: it has no records
        first, why = problems[0]
        raise CivmonError(
            f"{path} is read as a Reddit dump, but none of its first {len(problems)} lines is a comment or "
            f"submission (line {first}: {why})",
            "give Pushshift or Arctic Shift dumps (.zst or NDJSON), or corpora as uncompressed .csv, .jsonl or .json",
        )


def count_records(path: Path, kind: Kind, text_column: str) -> Count:
    """The client's first pass. A dump's newlines are counted in the decompressed stream (no parsing);
    a corpus is read as its tasks will read it, since a CSV field may hold line breaks."""
    if kind == "corpus":
        handle, rows = read_rows(path, text_column)
        with handle:
            count, missing = 0, 0
            for row in rows:
                count, missing = count + 1, missing + row.no_field
        if count and missing == count:  # told now, before a cluster scores a corpus into rows of reasons
            raise no_text_field(path, text_column)
        return Count(count)
    lines, raw = open_dump(path)
    count, last = 0, b"\n"
    with raw, lines:
        try:
            # read1: one read of the stream at a time, so nothing decompressed before a break is dropped
            while chunk := lines.read1(READ_BYTES):  # type: ignore[attr-defined]
                count += chunk.count(b"\n")
                last = chunk[-1:]
        except DamagedDump as exc:
            return Count(count, str(exc))  # a line cut off by the break is no record
    return Count(count + (last != b"\n"))


def read_records(
    path: Path, kind: Kind, text_column: str, first: int, last: int, pseudonymiser: Pseudonymiser
) -> Iterator[Record]:
    """Records `first` to `last` (1-based, inclusive). A zstd stream cannot seek, so the reading starts at
    the file's beginning and skips to `first`: decompressing and splitting lines runs at ~1 GB/s (900,000
    lines/s on one core here), thousands of times a core's scoring rate, so a partition's skip costs little
    next to its scoring. The skip grows with the position: deep in a file of 10^8 lines, a larger
    --partition-rows keeps it small."""
    if kind == "corpus":
        handle, rows = read_rows(path, text_column)
        with handle:
            for number, row in enumerate(islice(rows, first - 1, last), start=first):
                # a row's problem is one of reading it (not JSON, no text field): a bad line, as in a dump
                bad = Row(None, f"{BAD_LINE}{row.problem}") if row.problem else row
                yield Record(number, {"comment_id": str(number)}, bad)
        return
    lines, raw = open_dump(path)
    with raw, lines:
        for number, line in enumerate(islice(lines, first - 1, last), start=first):
            if line.strip():
                yield _dump_record(number, line, pseudonymiser)


def _dump_record(number: int, line: bytes, pseudonymiser: Pseudonymiser) -> Record:
    """A dump line as `civmon import` would store it: the same validators, records, cleaned text and pseudonym."""
    try:
        item = parse_line(line)
    except ValueError as exc:  # the reason names fields, never the line's text
        return Record(number, {}, Row(None, f"{BAD_LINE}{exc}"))
    if isinstance(item, DumpSubmission):
        fields = {"thread_id": item.id, "community": item.subreddit, "created_utc": int(item.created_utc)}
        return Record(number, fields, Row(None, SUBMISSION))
    comment = comment_record(item.model_dump())
    fields = {
        "comment_id": comment.platform_id,
        "thread_id": comment.thread_id,
        "parent_id": comment.parent_id,
        "community": item.subreddit,
        "created_utc": comment.created_utc,
        "author": pseudonymiser.author("reddit", comment.author),
    }
    if comment.state is not ItemState.LIVE:
        return Record(number, fields, Row(None, f"{comment.state.value}: no text to score"))
    return Record(number, fields, Row(clean_text(comment.body)))
