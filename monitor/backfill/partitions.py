"""A backfill's output folder: one Parquet file per partition, and the manifest that pins what made them.

FOLDER/_backfill.json           the inputs (path, size, mtime, records), partition size, text column, model
FOLDER/<input name>/part-NNNNNN.parquet   one partition's rows, in input order
FOLDER/.backfill.lock           locked by the run using the folder (flock), so a second one is refused

A partition is written to a hidden temporary name beside its final one and moved into place
(`os.replace`) only once whole, so a partition file that exists is complete; readers of the folder
(pyarrow, pandas, DuckDB) skip names starting with `.` or `_`. Each file's Parquet metadata carries
its summary (rows, scored, bad lines), so a rerun reports partitions it skipped without reading them.
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from monitor.backfill.inputs import Kind
from monitor.errors import CivmonError
from monitor.locking import exclusive
from monitor.scoring.base import DIMENSIONS

MANIFEST = "_backfill.json"
LOCK = ".backfill.lock"
MANIFEST_FORMAT = 1
SUMMARY_KEY = b"civmon.backfill"
TEMPORARY = ".part-*.tmp"
FILE_MODE = 0o600
TEXT, INTEGER, SCORE = pa.string(), pa.int64(), pa.float64()
SCHEMA = pa.schema(
    [
        ("source_file", TEXT),
        ("source_line", INTEGER),  # a dump's line number, a corpus's row number
        ("comment_id", TEXT),  # a corpus's row number, as text
        ("thread_id", TEXT),
        ("parent_id", TEXT),
        ("community", TEXT),
        ("created_utc", INTEGER),
        ("author", TEXT),  # pseudonymised with the configured key
        *((dimension, SCORE) for dimension in DIMENSIONS),
        ("perspective_toxicity", SCORE),  # the model's score on Perspective's TOXICITY scale
        ("alliance", SCORE),
        ("language", TEXT),
        ("model_version", TEXT),
        ("skip_reason", TEXT),
    ]
)


@dataclass(frozen=True)
class Partition:
    """One task's work: records `first` to `last` of one input, into `target`."""

    path: str  # absolute, as the workers read it
    kind: Kind
    text_column: str
    index: int
    first: int
    last: int
    target: str

    @property
    def records(self) -> int:
        return self.last - self.first + 1


def folder_name(path: Path) -> str:
    """The input's subfolder: its file name, without a leading . or _ that would hide it from readers."""
    return path.name.lstrip("._") or "input"


def plan(entry: InputEntry, text_column: str, size: int, out: Path) -> list[Partition]:
    """The input's partitions, `size` records each (the last one fewer)."""
    folder = out / folder_name(Path(entry.path))
    parts = []
    for i, first in enumerate(range(1, entry.records + 1, size)):
        last, target = min(first + size - 1, entry.records), folder / f"part-{i:06d}.parquet"
        parts.append(Partition(entry.path, entry.kind, text_column, i, first, last, str(target)))
    return parts


def write_partition(target: Path, columns: dict[str, list[Any]], summary: dict[str, Any]) -> None:
    """The partition's file, appearing whole or not at all."""
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # pseudonyms and ids: the researcher's only
    table = pa.table(columns, schema=SCHEMA.with_metadata({SUMMARY_KEY: json.dumps(summary).encode()}))
    temporary = target.with_name(f".{target.stem}.{uuid.uuid4().hex}.tmp")  # one per attempt: a retry never shares
    try:
        pq.write_table(table, temporary)
        temporary.chmod(FILE_MODE)  # as exports are: a --out made beforehand may be readable by all
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


class DamagedPartition(Exception):
    """A partition file that cannot be read (cut short by a copy, say): it is redone."""


def written_summary(target: Path) -> dict[str, Any] | None:
    """A complete partition's summary, or None where it is not written yet."""
    try:
        return json.loads((pq.read_schema(target).metadata or {})[SUMMARY_KEY])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError) as exc:  # pyarrow's ArrowInvalid is a ValueError; KeyError: no summary
        raise DamagedPartition(f"{exc!r}"[:200]) from None


def remove_temporaries(out: Path) -> int:
    """Half-written partitions of a run that died (their tasks are redone); only when no task runs."""
    leftovers = list(out.glob(f"*/{TEMPORARY}"))
    for path in leftovers:
        path.unlink(missing_ok=True)
    return len(leftovers)


def locked(out: Path) -> AbstractContextManager[None]:
    """The folder, created and locked for one run: a second run would delete the first's temporaries (and
    write the same partitions). Taken before any counting, so a bad --out is told at once. The lock is the
    client's, taken where `civmon backfill` runs: with --scheduler on a shared filesystem, flock may not
    reach another machine's client; the workers take none (they only write their own partitions)."""
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)  # pseudonyms and ids: for the researcher, like exports
        (out / LOCK).touch(mode=0o600)
    except OSError as exc:
        raise CivmonError(
            f"cannot write --out {out}: {exc.strerror or exc}",
            "name a folder that can be created and written (its parents must be folders)",
        ) from None
    busy = CivmonError(f"another civmon backfill is using {out}", "wait for it to finish, or name another --out folder")
    return exclusive(out / LOCK, busy)


@dataclass(frozen=True)
class InputEntry:
    path: str
    kind: Kind
    size: int
    mtime_ns: int
    records: int
    damage: str | None

    def same_file(self, other: InputEntry) -> bool:
        return (self.path, self.size, self.mtime_ns) == (other.path, other.size, other.mtime_ns)


@dataclass(frozen=True)
class Manifest:
    partition_rows: int
    text_column: str
    inputs: list[InputEntry]
    model_version: str | None = None

    def write(self, out: Path) -> None:
        temporary = out / f".{MANIFEST}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps({"format": MANIFEST_FORMAT, **asdict(self)}, indent=2) + "\n")
        os.replace(temporary, out / MANIFEST)


def read_manifest(out: Path) -> Manifest | None:
    """The folder's manifest; None for a new or empty folder, a CivmonError for one a backfill did not make."""
    path = out / MANIFEST
    if out.exists() and not out.is_dir():
        raise CivmonError(f"--out {out} is a file", "name a folder: the backfill writes a folder of partitions")
    if not path.exists():
        if out.exists() and any(p.name != LOCK for p in out.iterdir()):
            raise CivmonError(
                f"--out {out} is not empty and holds no {MANIFEST}: it is not a backfill's folder",
                "name a new or empty folder (a backfill's own folder resumes it)",
            )
        return None
    try:
        data = json.loads(path.read_text())
        inputs = [InputEntry(**entry) for entry in data["inputs"]]
        return Manifest(data["partition_rows"], data["text_column"], inputs, data["model_version"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CivmonError(
            f"{path} cannot be read ({exc})", "name a new folder, or delete this one to start over"
        ) from None


def check_same_run(old: Manifest, new: Manifest, out: Path) -> None:
    """A rerun must be the same backfill, or its partitions would mix two runs' rows."""
    differences = []
    if old.partition_rows != new.partition_rows:
        differences.append(f"--partition-rows {new.partition_rows:,} (it was {old.partition_rows:,})")
    if old.text_column != new.text_column:
        differences.append(f"--text-column {new.text_column!r} (it was {old.text_column!r})")
    if [i.path for i in old.inputs] != [i.path for i in new.inputs]:
        differences.append("other inputs: " + ", ".join(i.path for i in old.inputs) + " before")
    else:
        changed = [n.path for o, n in zip(old.inputs, new.inputs, strict=True) if not o.same_file(n)]
        differences += [f"{path} changed since (its size or time)" for path in changed]
    if old.model_version and new.model_version and old.model_version != new.model_version:
        differences.append(f"model {new.model_version} (it was {old.model_version})")
    if differences:
        raise CivmonError(
            f"--out {out} holds a backfill made differently: " + "; ".join(differences),
            "rerun it as it was to resume it, or name a new --out folder (or delete this one) to start over",
        )
