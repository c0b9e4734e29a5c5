"""`civmon score --input FILE`: score a researcher's own CSV or JSONL corpus, outside the store.

Output: JSON Lines, one object per input row, in input order: `row` (1-based), a key per
dimension of the model, `alliance`, `language`, `model_version`, and `reason` — null when
the row was scored, else why not (missing column, not UTF-8, not English, empty, ...).
CSV and JSON Lines rows are streamed in batches, so the file can be larger than memory; a
.json file that holds one array of objects is read whole (any other .json as JSON Lines).
The output is written beside its final name and moved there at the end, so a crash never
leaves a half-written file.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any

from monitor.errors import CivmonError
from monitor.scoring.base import Scorer
from monitor.scoring.results import Result, score_texts

BATCH = 512
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # comments can be long; the default 128 KiB is not enough


@dataclass(frozen=True)
class Row:
    text: str | None
    problem: str | None = None


_SHORT_ROW = object()  # DictReader's filler for a row with fewer fields than the header


def _csv_rows(handle: IO[str], column: str) -> Iterator[Row]:
    reader = csv.DictReader(handle, restval=_SHORT_ROW)
    if reader.fieldnames is None or column not in reader.fieldnames:
        raise CivmonError(
            f"the CSV file has no column {column!r} (columns: {', '.join(reader.fieldnames or [])})",
            "pass the name of the column holding the text with --text-column",
        )
    for record in reader:
        value = record[column]
        yield Row(None, f"no {column!r} field (the row is short)") if value is _SHORT_ROW else _checked(value)


def _jsonl_rows(handle: IO[str], column: str) -> Iterator[Row]:
    for line in handle:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Row(None, f"not JSON ({exc.msg})")
            continue
        yield _field(record, column)


def _json_array_rows(handle: IO[str], column: str, path: Path) -> Iterator[Row]:
    try:
        records = json.load(handle)
    except json.JSONDecodeError as exc:
        raise CivmonError(
            f"{path} is not JSON ({exc.msg}, line {exc.lineno})",
            "a .json file must hold one array of objects; name a JSON Lines file .jsonl",
        ) from exc
    if not isinstance(records, list):
        raise CivmonError(f"{path} holds a JSON {type(records).__name__}, not an array", "give an array of objects")
    for record in records:
        yield _field(record, column)


def _field(record: object, column: str) -> Row:
    if not isinstance(record, dict) or column not in record:
        return Row(None, f"no {column!r} field")
    value = record[column]
    return _checked(value) if value is None or isinstance(value, str) else Row(None, f"{column!r} is not text")


def _checked(text: str | None) -> Row:
    # Undecodable bytes arrive as lone surrogates (errors="surrogateescape"): flag, never guess.
    if text is not None and any("\udc80" <= ch <= "\udcff" for ch in text):
        return Row(None, "not UTF-8 text")
    return Row(text)


def read_rows(path: Path, column: str) -> tuple[IO[str], Iterator[Row]]:
    if not path.is_file():
        raise CivmonError(f"{path} is not a file", "give a .csv, .jsonl, .ndjson or .json file")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson", ".json"):
        raise CivmonError(f"{path}: unknown file type {path.suffix!r}", "use a .csv, .jsonl (JSON Lines) or .json file")
    # utf-8-sig: spreadsheet programs start their CSV exports with a byte-order mark
    handle = path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
    if suffix == ".csv":
        return handle, _csv_rows(handle, column)
    if suffix == ".json" and _starts_with(handle, "["):  # many .json corpora are JSON Lines all the same
        return handle, _json_array_rows(handle, column, path)
    return handle, _jsonl_rows(handle, column)


def _starts_with(handle: IO[str], character: str) -> bool:
    """Whether the text's first non-blank character is `character`; the handle is left at the start."""
    while (ch := handle.read(1)).isspace():
        pass
    handle.seek(0)
    return ch == character


def _record(number: int, row: Row, result: Result | None, scorer: Scorer) -> dict[str, Any]:
    scores = result.scores if result and result.scores else {}
    return {
        "row": number,
        **{d: scores.get(d) for d in scorer.dimensions},
        "alliance": result.alliance if result else None,
        "language": result.language if result else None,
        "model_version": scorer.version,
        "reason": row.problem or (result.reason if result else None),
    }


def score_file(
    scorer: Scorer, source: Path, column: str, target: Path, progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Score every row; returns counts of scored and unscored rows."""
    if target.is_dir():
        raise CivmonError(f"--output {target} is a folder", f"name a file, e.g. --output {target / 'scores.jsonl'}")
    if source.is_file() and target.exists() and os.path.samefile(source, target):
        raise CivmonError(f"--output {target} is the input file: writing it would erase the corpus", "name a new file")
    counts = {"rows": 0, "scored": 0, "not scored": 0}
    handle, rows = read_rows(source, column)
    with handle, _replacing(target) as out:
        while batch := list(islice(rows, BATCH)):
            scorable = [r for r in batch if r.problem is None]
            results = iter(score_texts(scorer, [r.text for r in scorable]))
            for row in batch:
                counts["rows"] += 1
                record = _record(counts["rows"], row, None if row.problem else next(results), scorer)
                counts["scored" if record["reason"] is None else "not scored"] += 1
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            if progress:
                progress(counts["rows"])
    return counts


@contextmanager
def _replacing(target: Path) -> Iterator[IO[str]]:
    """A new file beside `target` that takes its name only once it is complete."""
    partial = target.with_name(f".{target.name}.part")
    try:
        with partial.open("w", encoding="utf-8") as out:
            yield out
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)  # gone once moved; removed if anything failed
