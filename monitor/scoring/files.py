"""`civmon score --input FILE`: score a researcher's own CSV or JSONL corpus, outside the store.

Output: JSON Lines, one object per input row, in input order: `row` (1-based), a key per
dimension of the model, `alliance`, `language`, `model_version`, and `reason` — null when
the row was scored, else why not (missing column, not UTF-8, not English, empty, ...).
CSV and JSON Lines rows are streamed in batches, so the file can be larger than memory; a
.json file that holds one array of objects is read whole (any other .json as JSON Lines).
The output is written beside its final name and moved there at the end, so a crash never
leaves a half-written file (an existing file keeps its permissions). A FIFO or a character
device (/dev/stdout, /dev/null, a pipe) is written straight through, as a shell redirection
would. A symbolic link to a file is refused rather than replaced or written through: as root,
a link planted at the output path would otherwise overwrite what it points to.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any, Literal

from monitor.errors import CivmonError
from monitor.scoring.base import TOXICITY, Scorer, perspective_toxicity
from monitor.scoring.results import Result, score_texts

BATCH = 512
NOT_UTF8 = "not UTF-8 text"
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # comments can be long; the default 128 KiB is not enough


@dataclass(frozen=True)
class Row:
    text: str | None
    problem: str | None = None
    no_field: bool = False  # no field by the text's name, or not JSON (in no row at all: the wrong name or file)


_SHORT_ROW = object()  # DictReader's filler for a row with fewer fields than the header
_LONG_ROW = object()  # DictReader's key for the fields beyond the header's


def _csv_reader(handle: IO[str]) -> csv.DictReader:  # type: ignore[type-arg]
    # strict: a quote left open would otherwise swallow every later line into one field, silently losing rows
    return csv.DictReader(handle, restkey=_LONG_ROW, restval=_SHORT_ROW, strict=True)  # type: ignore[arg-type]


def _csv_names(reader: csv.DictReader, column: str) -> list[str]:  # type: ignore[type-arg]
    """The header's column names, once it is known to name `column` once."""
    names = _read_csv(reader, lambda: reader.fieldnames) or []
    if not names:
        raise CivmonError(
            "the CSV file is empty: it has no header row", "give a CSV file whose first line names its columns"
        )
    if any("\udc80" <= ch <= "\udcff" or ch == "\x00" for name in names for ch in name):
        raise CivmonError(
            "the CSV file's header is not UTF-8 text (a UTF-16, Latin-1 or compressed file?)",
            "save or export it as UTF-8 CSV, or decompress it first",
        )
    if column not in names:
        raise CivmonError(
            f"the CSV file has no column {column!r} (columns: {', '.join(map(repr, names))})",
            "pass the name of the column holding the text with --text-column",
        )
    if names.count(column) > 1:
        positions = ", ".join(str(i) for i, name in enumerate(names, 1) if name == column)
        raise CivmonError(
            f"the CSV file has {names.count(column)} columns named {column!r} (columns {positions})",
            "rename all but the one holding the text, or pass another column with --text-column",
        )
    return names


def _csv_rows(handle: IO[str], column: str) -> Iterator[Row]:
    reader = _csv_reader(handle)
    names = _csv_names(reader, column)
    while (record := _read_csv(reader, lambda: next(reader, None))) is not None:
        value = record[column]
        if value is _SHORT_ROW:
            yield Row(None, f"no {column!r} field (the row is short)")
        elif _LONG_ROW in record and len(names) == 1:  # a text alone on its line, with unquoted commas
            yield _checked(",".join([value, *record[_LONG_ROW]]))
        elif _LONG_ROW in record:  # a text with an unquoted comma: which fields belong to it cannot be known
            yield Row(
                None,
                f"{len(names) + len(record[_LONG_ROW])} fields where the header has {len(names)} "
                "(an unquoted comma in the text?)",
            )
        else:
            yield _checked(value)


def _read_csv(reader: csv.DictReader, read: Callable[[], Any]) -> Any:  # type: ignore[type-arg]
    """What `read` reads; a malformed row is an error naming its first line (the reader's count is of rows done)."""
    try:
        return read()
    except csv.Error as exc:
        raise CivmonError(
            f"the CSV file is malformed in the row starting at line {reader.line_num + 1}: {exc}",
            'an unterminated or stray quote (") is the usual cause: fix the file, or export it again',
        ) from None


def _jsonl_rows(handle: IO[str], column: str) -> Iterator[Row]:
    for line in handle:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:
            # nor has it the field: a corpus none of whose lines both parse and name it has the wrong name
            yield Row(None, f"not JSON ({_json_problem(exc)})", no_field=True)
            continue
        yield _field(record, column)


def _json_array_rows(handle: IO[str], column: str, path: Path) -> Iterator[Row]:
    try:
        records = json.load(handle)
    except (ValueError, RecursionError) as exc:
        line = f", line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise CivmonError(
            f"{path} is not JSON ({_json_problem(exc)}{line})",
            "a .json file must hold one array of objects; name a JSON Lines file .jsonl",
        ) from None
    if not isinstance(records, list):
        raise CivmonError(f"{path} holds a JSON {type(records).__name__}, not an array", "give an array of objects")
    for record in records:
        yield _field(record, column)


def _json_problem(exc: ValueError | RecursionError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split(":")[0]  # e.g. a number past Python's limit on digits


def _field(record: object, column: str) -> Row:
    if not isinstance(record, dict) or column not in record:
        return Row(None, f"no {column!r} field", no_field=True)
    value = record[column]
    return _checked(value) if value is None or isinstance(value, str) else Row(None, f"{column!r} is not text")


def _checked(text: str | None) -> Row:
    # Undecodable bytes arrive as lone surrogates (errors="surrogateescape"): flag, never guess.
    if text is not None and any("\udc80" <= ch <= "\udcff" for ch in text):
        return Row(None, NOT_UTF8)
    return Row(text)


def _check_input(path: Path) -> None:
    if not path.is_file():
        raise CivmonError(f"{path} is not a file", "give a .csv, .jsonl, .ndjson or .json file")
    if path.suffix.lower() not in (".csv", ".jsonl", ".ndjson", ".json"):
        raise CivmonError(f"{path}: unknown file type {path.suffix!r}", "use a .csv, .jsonl (JSON Lines) or .json file")


def _open(path: Path) -> IO[str]:
    # utf-8-sig: spreadsheet programs start their CSV exports with a byte-order mark
    return path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")


def read_rows(path: Path, column: str) -> tuple[IO[str], Iterator[Row]]:
    _check_input(path)
    suffix = path.suffix.lower()
    handle = _open(path)
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


def output_record(number: int, row: Row, result: Result | None, scorer: Scorer) -> dict[str, Any]:
    """One output row, as `civmon score --input` writes it (and the API's /v1/score returns it)."""
    scores = result.scores if result and result.scores else {}
    return {
        "row": number,
        **{d: scores.get(d) for d in scorer.dimensions},
        # Perspective's TOXICITY scale, for series and thresholds built on Perspective
        TOXICITY: perspective_toxicity(scores),
        "alliance": result.alliance if result else None,
        "language": result.language if result else None,
        "model_version": scorer.version,
        "reason": row.problem or (result.reason if result else None),
    }


OutputKind = Literal["file", "stream"]  # file: replaced whole at the end; stream: written straight through


def check_paths(source: Path, target: Path, column: str) -> OutputKind:
    """Refuse, before anything is scored, an input that cannot be read (a CSV's header without the text's
    column too) and an output that must not be written."""
    _check_input(source)
    if source.suffix.lower() == ".csv":
        with _open(source) as handle:
            _csv_names(_csv_reader(handle), column)
    try:
        status = target.stat()  # follows links, /proc's too: /dev/stdout is a link to the pipe or terminal
    except (FileNotFoundError, NotADirectoryError):
        status = None  # a new file, a link to nothing, or a path through a file (told below)
    except OSError as exc:
        raise _output_error(target, exc) from None
    streams = status is not None and (stat.S_ISFIFO(status.st_mode) or stat.S_ISCHR(status.st_mode))
    if target.is_symlink() and not streams:
        raise CivmonError(
            f"--output {target} is a symbolic link (to {target.resolve()})",
            "civmon replaces its output whole and never through a link: name the file itself or a new path",
        )
    if status is None:
        _check_folder(target.parent)
        return "file"
    if stat.S_ISDIR(status.st_mode):
        raise CivmonError(f"--output {target} is a folder", f"name a file, e.g. --output {target / 'scores.jsonl'}")
    if streams:
        return "stream"
    if not stat.S_ISREG(status.st_mode):
        raise CivmonError(f"--output {target} is not a file (a block device or socket)", "name a file to write")
    if os.path.samefile(source, target):
        raise CivmonError(f"--output {target} is the input file: writing it would erase the corpus", "name a new file")
    return "file"


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise CivmonError(f"the output's folder {folder} does not exist", f"create it first (mkdir -p {folder})")
    if not folder.is_dir():
        raise CivmonError(f"the output's folder {folder} is a file, not a folder", "name a path in an existing folder")


def _output_error(target: Path, exc: OSError) -> CivmonError:
    return CivmonError(
        f"cannot write --output {target}: {exc.strerror or exc}",
        "check that its folder is writable and has room, or name another path",
    )


@dataclass
class Counts:
    rows: int = 0
    scored: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # why rows were not scored, details in brackets dropped

    @property
    def not_scored(self) -> int:
        return self.rows - self.scored


def score_file(
    scorer: Scorer, source: Path, column: str, target: Path, progress: Callable[[int], None] | None = None
) -> Counts:
    """Score every row; returns how many were scored, and why the others were not."""
    kind = check_paths(source, target, column)
    counts, missing = Counts(), 0
    handle, rows = read_rows(source, column)
    with handle, _output(target, kind) as out:
        while batch := list(islice(rows, BATCH)):
            scorable = [r for r in batch if r.problem is None]
            missing += sum(r.no_field for r in batch)
            results = iter(score_texts(scorer, [r.text for r in scorable]))
            lines = []
            for row in batch:
                counts.rows += 1
                record = output_record(counts.rows, row, None if row.problem else next(results), scorer)
                if record["reason"] is None:
                    counts.scored += 1
                else:
                    counts.reasons[record["reason"].split(" (")[0]] += 1
                lines.append(json.dumps(record, ensure_ascii=False) + "\n")
            _write(out, target, "".join(lines))
            if progress:
                progress(counts.rows)
        if counts.rows and missing == counts.rows:  # raised before a file output takes its name
            raise no_text_field(source, column)
    return counts


def no_text_field(source: Path, column: str) -> CivmonError:
    """The error for a corpus none of whose rows has the text's field: the wrong name, or a swapped path."""
    return CivmonError(
        f"no row of {source} has a field {column!r}: nothing was scored",
        "pass the name of the field holding the text with --text-column, and check that the file is the corpus "
        "(not civmon's output: --input and --output swapped?)",
    )


def _write(out: IO[str], target: Path, text: str) -> None:
    try:
        out.write(text)
    except OSError as exc:  # a full disk, or a pipe whose reader went away
        raise _output_error(target, exc) from None


@contextmanager
def _output(target: Path, kind: OutputKind) -> Iterator[IO[str]]:
    """Where the results go: a stream straight away, a file beside `target` that takes its name once complete."""
    # not the target's name and more: a name near the 255-byte limit would pass it
    written = target if kind == "stream" else target.with_name(f".civmon-score.{os.getpid()}.part")
    try:
        # a new file: O_EXCL, never through a file or link already there; 0o666 less the umask, as any new file
        flags = os.O_WRONLY | (os.O_TRUNC if kind == "stream" else os.O_CREAT | os.O_EXCL)
        out = open(os.open(written, flags, 0o666), "w", encoding="utf-8")
    except OSError as exc:
        raise _output_error(target, exc) from None
    try:
        yield out
        _finish(out, written, target)
    finally:
        out.close()
        if written != target:
            written.unlink(missing_ok=True)  # gone once moved; removed if anything failed


def _finish(out: IO[str], written: Path, target: Path) -> None:
    """Close the output (its last writes reach the disk here); a file takes the target's name and permissions."""
    try:
        out.close()
        if written != target:
            if target.exists():
                shutil.copymode(target, written)  # a private results file stays private
            os.replace(written, target)  # a link put there meanwhile is replaced itself, not what it points to
    except OSError as exc:
        raise _output_error(target, exc) from None
