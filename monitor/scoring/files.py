"""`civmon score --input FILE`: score a researcher's own CSV or JSONL corpus, outside the store.

Output: JSON Lines, one object per input row, in input order: `row` (1-based), a key per
dimension of the model, `alliance`, `language`, `model_version`, and `reason` — null when
the row was scored, else why not (missing column, not UTF-8, not English, empty, ...).
Rows are streamed in batches, so the file can be larger than memory.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
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


def _csv_rows(handle: IO[str], column: str) -> Iterator[Row]:
    reader = csv.DictReader(handle)
    if reader.fieldnames is None or column not in reader.fieldnames:
        raise CivmonError(
            f"the CSV file has no column {column!r} (columns: {', '.join(reader.fieldnames or [])})",
            "pass the name of the column holding the text with --text-column",
        )
    for record in reader:
        yield _checked(record.get(column))


def _jsonl_rows(handle: IO[str], column: str) -> Iterator[Row]:
    for line in handle:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Row(None, f"not JSON ({exc.msg})")
            continue
        if not isinstance(record, dict) or column not in record:
            yield Row(None, f"no {column!r} field")
            continue
        value = record[column]
        yield _checked(value) if value is None or isinstance(value, str) else Row(None, f"{column!r} is not text")


def _checked(text: str | None) -> Row:
    # Undecodable bytes arrive as lone surrogates (errors="surrogateescape"): flag, never guess.
    if text is not None and any("\udc80" <= ch <= "\udcff" for ch in text):
        return Row(None, "not UTF-8 text")
    return Row(text)


def read_rows(path: Path, column: str) -> tuple[IO[str], Iterator[Row]]:
    if not path.is_file():
        raise CivmonError(f"{path} is not a file", "give a .csv, .jsonl or .ndjson file")
    handle = path.open(encoding="utf-8", errors="surrogateescape", newline="")
    if path.suffix.lower() == ".csv":
        return handle, _csv_rows(handle, column)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return handle, _jsonl_rows(handle, column)
    handle.close()
    raise CivmonError(f"{path}: unknown file type {path.suffix!r}", "use a .csv or a .jsonl (JSON Lines) file")


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
    counts = {"rows": 0, "scored": 0, "not scored": 0}
    handle, rows = read_rows(source, column)
    with handle, target.open("w", encoding="utf-8") as out:
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
