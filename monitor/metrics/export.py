"""`civmon export`: comment-level scores and rollups as CSV and Parquet, with a data dictionary.

Authors are the stored pseudonyms; bodies are included only where the privacy settings
keep them. Rows are streamed in batches, so exports of millions of comments stay in memory.
`drop_ids` makes an export to share: nothing in it leads back to a comment with one lookup.
Files are written in a scratch folder and moved into place at the end, so an export that
fails leaves the previous one as it was.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import Engine, Row, and_, func, select
from sqlalchemy.orm import Session

from monitor.errors import CivmonError
from monitor.locking import exclusive
from monitor.metrics.rollups import BUCKETS, computed, stats
from monitor.privacy import Pseudonymiser
from monitor.records import ItemState, original_url
from monitor.scoring.base import DIMENSIONS
from monitor.store.authorship import describe, stored_keying
from monitor.store.models import Comment, Community, Rollup, Score, Thread

BATCH = 20_000
ESTIMATES = ("hostility", "hostile_share", "respect", "warmth", "alliance")
COMMENT_COLUMNS = {
    "community": "platform/name of the community",
    "thread_id": "the thread's platform id (Reddit submission id without t3_, or Hacker News story id)",
    "comment_id": "the comment's platform id (Reddit id without t1_, or Hacker News item id)",
    "parent_id": "platform id of the comment or thread it answers (equal to thread_id: a top-level comment)",
    "depth": "0 for a top-level comment, 1 for a reply to one, ...; empty where unknown",
    "author": "the author as the store keeps it (see Privacy); empty for deleted authors",
    "created_utc": "creation time, seconds since 1970-01-01 UTC",
    "edited_utc": "time of the last edit, if edited (for old Reddit data: the creation time, the edit's lower bound)",
    "state": "live, deleted (by its author) or removed (by moderators or the platform)",
    "platform_score": "the platform's vote score when last collected",
    "permalink": "link to the comment on its platform",
    "body": "the comment's text (only when [privacy] keep_bodies is true)",
    "model_version": "the model that produced the scores (encoder + heads fingerprint, or hub id + revision)",
    **{
        d: f"{d.replace('_', ' ')} score in [0, 1] (empty: the model does not provide it, or did not score)"
        for d in DIMENSIONS
    },
    "alliance": "alliance index in [-1, 1]: mean(respect, warmth) - hostility",
    "language": "the comment's language where detected; non-English comments are not scored",
    "skip_reason": (
        "why the comment has no scores (empty, [removed], not English, deleted, not scored yet by this model "
        "version, ...); empty when it was scored"
    ),
}
ROLLUP_COLUMNS = {
    "community": "platform/name of the community",
    "bucket": "hour, day or week (weeks start on Monday), UTC",
    "start_utc": "the bucket's start, seconds since 1970-01-01 UTC",
    "comments": "comments created in the bucket",
    "scored": "of those, comments with a hostility score",
    **{
        f"{m}{s}": f"{m.replace('_', ' ')}: {w}"
        for m in ESTIMATES
        for s, w in (("", "estimate"), ("_low", "95% interval, lower end"), ("_high", "95% interval, upper end"))
    },
    "model_version": "the model whose scores these are",
}
FORMATS = ("csv", "parquet")
TABLES = ("comments", "rollups")
# --drop-ids: a permalink is the comment itself, and a verbatim text is one web search away from it
LEFT_OUT_TO_SHARE = ("permalink", "body")
PER_EXPORT_PSEUDONYMS = ("thread_id", "comment_id", "parent_id", "author")
HOURLY_TIMES = ("created_utc", "edited_utc")  # --drop-ids: an exact second finds a comment in a dump
SHARED_MEANINGS = {
    "thread_id": "pseudonym of the thread, made for this export only: joins its rows, links to nothing outside it",
    "comment_id": "pseudonym of the comment, made for this export only: joins its rows, links to nothing outside it",
    "parent_id": "pseudonym of the comment or thread it answers (equal to thread_id: a top-level comment)",
    "author": "pseudonym of the author, made for this export only: one author within it, unlinkable to other exports",
    "created_utc": "creation time rounded down to the hour, seconds since 1970-01-01 UTC",
    "edited_utc": "time of the last edit rounded down to the hour, if edited",
}
IDENTIFYING_NOTE = (
    "This export is for your own analysis, not for sharing: `comment_id`, `thread_id`, `parent_id` and `permalink` "
    "re-identify an author with one lookup (the platform shows the comment with its author's user name), and so "
    "does a body pasted into a search engine, or an exact `created_utc` searched in a public dump. `author` is as "
    "stored, and this store holds {authors}; a pseudonym is the same across exports of stores with the same key "
    "check. To share, export with `--drop-ids`."
)
SHARED_NOTE = (
    "Made with `--drop-ids`, for sharing: permalinks and bodies are left out, times are rounded down to the hour, "
    "and thread, comment, parent and author ids are pseudonyms keyed with a random key that was thrown away after "
    "the export: rows join within this export (threads, replies, authors) and to nothing outside it, not even to "
    "another export of the same data. A Reddit user's profile community (`reddit/u_NAME`) is named by its user, so "
    "its name is such a pseudonym too, the same in both tables. Rollups carry no other ids."
)
CSV_NOTE = (
    "A text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return, after any spaces or line breaks, "
    "would run as a formula in a spreadsheet (CSV injection), so in the CSV files such a cell starts with an added "
    "`'`, as does one that began with `'` already: remove the first `'` of every text cell that starts with one "
    "to get the exact text back. Numbers are written as numbers. The Parquet files keep the raw text."
)
# OWASP's CSV injection advice: a spreadsheet runs a text cell starting with = + - @ tab or CR as a
# formula, unless it starts with '. A ' is added to those, and to cells starting with ' already, so
# removing the first ' of every cell that starts with one gives back the exact text. Spaces and line breaks
# before the trigger do not make a cell safe: an import that trims them (LibreOffice's "Trim spaces") leaves the
# trigger in front. \p{Z} adds no-break and other Unicode spaces to RE2's ASCII \s.
FORMULA_START = r"^([\s\p{Z}]*[=+\-@\t\r'])"
FILE_MODE = 0o600
DICTIONARY = "DATA_DICTIONARY.md"
HEADING = "# civmon export: data dictionary"  # how an earlier export's folder is known
SCRATCH_PREFIX = ".export-"
NOT_SCORED_YET = "not scored yet by this model version"


INTEGERS = {"depth", "created_utc", "edited_utc", "platform_score", "start_utc", "comments", "scored"}
FLOATS = {
    *DIMENSIONS,
    "alliance",
    *(c for c in ROLLUP_COLUMNS if c.removesuffix("_low").removesuffix("_high") in ESTIMATES),
}


def schema(columns: Sequence[str]) -> pa.Schema:
    """Explicit column types: a batch whose first rows are all empty must not fix a column as null-typed."""
    return pa.schema(
        [(c, pa.int64() if c in INTEGERS else pa.float64() if c in FLOATS else pa.string()) for c in columns]
    )


@dataclass(frozen=True)
class Filters:
    model_version: str
    communities: Sequence[str] = ()  # platform/name or name; empty: all
    since: int | None = None
    until: int | None = None


def comment_columns(with_bodies: bool, drop_ids: bool) -> list[str]:
    left_out = {*(LEFT_OUT_TO_SHARE if drop_ids else ()), *(() if with_bodies else ("body",))}
    return [c for c in COMMENT_COLUMNS if c not in left_out]


def _community_filter(filters: Filters) -> list:  # type: ignore[type-arg]
    if not filters.communities:
        return []
    wanted = [c.lower() for c in filters.communities]  # Reddit's names are case-insensitive, as the store finds them
    return [func.lower(Community.key).in_(wanted) | func.lower(Community.name).in_(wanted)]


def _period(column: object, filters: Filters) -> list:  # type: ignore[type-arg]
    bounds = []
    if filters.since is not None:
        bounds.append(column >= filters.since)  # type: ignore[operator]
    if filters.until is not None:
        bounds.append(column < filters.until)  # type: ignore[operator]
    return bounds


def _whole(filters: Filters, bucket: Rollup) -> bool:
    """A bucket wholly inside the period: one cut by --since or --until would count comments the comments table
    leaves out."""
    starts_in = filters.since is None or bucket.start_utc >= filters.since
    return starts_in and (filters.until is None or bucket.start_utc + BUCKETS[bucket.bucket] <= filters.until)


YEAR = re.compile(r"[0-9]{4}")
# 2001-09-09 to 5138: a shorter number is more likely a slip than a time, a longer one milliseconds
EPOCH_SECONDS = re.compile(r"[0-9]{10,11}")
MOMENTS = (
    "give an ISO date (2023-05-01) or time (2023-05-01T12:00, UTC unless it names an offset such as +02:00), "
    "a year (2023: its first moment) or epoch seconds (10 or 11 digits)"
)


def moment(option: str, text: str | None) -> int | None:
    """--since/--until as epoch seconds (None: not given). A bare small number is refused, not read as seconds
    after 1970, which would filter nothing without a word."""
    if text is None:
        return None
    text = text.strip()
    if EPOCH_SECONDS.fullmatch(text):
        return int(text)
    try:
        when = datetime(int(text), 1, 1) if YEAR.fullmatch(text) else datetime.fromisoformat(text)
    except ValueError:
        raise CivmonError(f"{option} {text!r} is not a date or time", MOMENTS) from None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


def _time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def check_filters(session: Session, filters: Filters) -> None:
    """A filter that matches nothing is a mistake to point out, not an empty export to write."""
    if filters.since is not None and filters.until is not None and filters.since >= filters.until:
        raise CivmonError(
            f"--since {_time(filters.since)} is not before --until {_time(filters.until)}",
            "--since is the first moment included, --until the first left out: swap them",
        )
    stored = session.execute(select(Community.key, Community.name).order_by(Community.key)).all()
    names = {n.lower() for row in stored for n in row}
    if unknown := [c for c in filters.communities if c.lower() not in names]:
        raise CivmonError(
            f"no community {', '.join(unknown)} in the store",
            f"stored communities: {', '.join(key for key, _ in stored) or 'none'}; "
            "pass --community platform/name or name",
        )
    _check_model_version(session, filters)
    _check_period(session, filters)


def _check_model_version(session: Session, filters: Filters) -> None:
    in_scope = (
        select(Score.model_version)
        .join(Comment, Comment.id == Score.comment_id)
        .join(Community, Community.id == Comment.community_id)
        .where(*_community_filter(filters))
    )
    if session.scalar(in_scope.where(Score.model_version == filters.model_version).limit(1)) is None:
        versions = session.scalars(in_scope.distinct().order_by(Score.model_version)).all()
        raise CivmonError(
            f"model version {filters.model_version} scored no comment of these communities",
            f"versions with scores: {', '.join(versions) or 'none'}; pass --model-version with one of them, "
            "or leave it out for the newest",
        )


def _check_period(session: Session, filters: Filters) -> None:
    in_scope = (
        select(Comment.id).join(Community, Community.id == Comment.community_id).where(*_community_filter(filters))
    )
    if session.scalar(in_scope.where(*_period(Comment.created_utc, filters)).limit(1)) is not None:
        return
    first, last = session.execute(
        select(func.min(Comment.created_utc), func.max(Comment.created_utc))
        .join(Community, Community.id == Comment.community_id)
        .where(*_community_filter(filters))
    ).one()
    raise CivmonError(
        "no comments in the period given by --since and --until",
        f"the comments stored run from {_time(first)} to {_time(last)}; widen the period or leave it out",
    )


class ExportPseudonyms:
    """--drop-ids: ids and authors are re-keyed with a random key that is never stored, so rows still join
    within the export (threads, replies, authors) but lead to nothing outside it; times are rounded to the hour."""

    def __init__(self) -> None:
        self._pseudonymiser = Pseudonymiser(secrets.token_bytes(32))

    def community(self, key: str) -> str:
        """A Reddit user's profile community (`reddit/u_NAME`) is named by the user: its name is re-keyed too."""
        platform, _, name = key.partition("/")
        if platform == "reddit" and name.startswith("u_"):
            return f"{platform}/u_{self._pseudonymiser.author('reddit:profile', name.removeprefix('u_'))}"
        return key

    def __call__(self, row: dict[str, object]) -> dict[str, object]:
        platform = str(row["community"]).partition("/")[0]
        row["community"] = self.community(str(row["community"]))
        for column in PER_EXPORT_PSEUDONYMS:
            kind = "author" if column == "author" else "id"  # thread, comment and parent ids must match each other
            row[column] = self._pseudonymiser.author(f"{platform}:{kind}", row[column])  # type: ignore[arg-type]
        for column in HOURLY_TIMES:
            if isinstance(seconds := row[column], int):
                row[column] = seconds - seconds % 3600
        return row


def comment_batches(
    session: Session, filters: Filters, columns: Sequence[str], shared: ExportPseudonyms | None
) -> Iterator[pa.RecordBatch]:
    query = (
        select(
            Community.key.label("community"),
            Thread.platform_id.label("thread_id"),
            Comment.platform_id.label("comment_id"),
            Comment.parent_platform_id.label("parent_id"),
            Comment.depth,
            Comment.author,
            Comment.created_utc,
            Comment.edited_utc,
            Comment.state,
            Comment.platform_score,
            Community.platform,
            Community.name.label("community_name"),
            Comment.body,
            Score.model_version,
            *(Score.__table__.c[d] for d in DIMENSIONS),
            Score.alliance,
            Score.language,
            Score.skip_reason,
        )
        .join(Community, Community.id == Comment.community_id)
        .join(Thread, Thread.id == Comment.thread_id)
        .outerjoin(Score, and_(Score.comment_id == Comment.id, Score.model_version == filters.model_version))
        .where(*_community_filter(filters), *_period(Comment.created_utc, filters))
        .order_by(Comment.id)
        .execution_options(yield_per=BATCH)
    )
    types = schema(columns)
    share: Callable[[dict[str, object]], dict[str, object]] = shared or (lambda row: row)
    for partition in session.execute(query).partitions():
        rows = [
            share(dict(r._mapping) | {"state": str(r.state), "permalink": _permalink(r), "skip_reason": _reason(r)})
            for r in partition
        ]
        yield pa.RecordBatch.from_pylist([{c: r[c] for c in columns} for r in rows], schema=types)


def _reason(row: Row) -> str | None:
    """The score's reason; a comment without a score row says why too, so that no row looks scored and empty."""
    if row.model_version is not None:
        return row.skip_reason  # type: ignore[no-any-return]
    return NOT_SCORED_YET if row.state == ItemState.LIVE else f"{row.state}: no text to score"


def _permalink(row: Row) -> str | None:
    # from ids, as the dashboard links: a permalink stored before links were built so may point anywhere
    return original_url(row.platform, row.community_name, row.thread_id, row.comment_id)


def rollup_rows(session: Session, filters: Filters, shared: ExportPseudonyms | None) -> Iterator[dict[str, object]]:
    """The rollups of the exported comments, computed from them (the stored ones may be older than their scores)."""
    keys = dict(session.execute(select(Community.id, Community.key).where(*_community_filter(filters))).all())
    scope = (Comment.community_id.in_(keys), *_period(Comment.created_utc, filters))
    rows = [r for r in computed(session, filters.model_version, *scope) if _whole(filters, r)]
    for row in sorted(rows, key=lambda r: (keys[r.community_id], r.bucket, r.start_utc)):
        community = keys[row.community_id]
        s = stats(row)
        out: dict[str, object] = {
            "community": shared.community(community) if shared else community,
            "bucket": row.bucket,
            "start_utc": row.start_utc,
            "comments": row.comments,
            "scored": row.scored,
        }
        for metric in ESTIMATES:
            e = getattr(s, metric)
            out |= {
                metric: e.value if e else None,
                f"{metric}_low": e.low if e else None,
                f"{metric}_high": e.high if e else None,
            }
        out["model_version"] = filters.model_version
        yield out


def spreadsheet_safe(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Text cells that a spreadsheet would run as formulas start with ' (see FORMULA_START); numbers stay numbers."""
    return pa.RecordBatch.from_arrays(
        [
            pc.replace_substring_regex(column, pattern=FORMULA_START, replacement=r"'\1")
            if pa.types.is_string(column.type)
            else column
            for column in batch.columns
        ],
        schema=batch.schema,
    )


def write(
    batches: Iterator[pa.RecordBatch], types: pa.Schema, folder: Path, name: str, formats: Sequence[str]
) -> list[Path]:
    """Stream record batches into NAME.csv (spreadsheet-safe text) and/or NAME.parquet (raw values).
    No rows still give a file with its header, so the folder never keeps an older export's table."""
    paths = [folder / f"{name}.{f}" for f in FORMATS if f in formats]
    with contextlib.ExitStack() as stack:
        writers = {
            p: stack.enter_context(pacsv.CSVWriter(p, types) if p.suffix == ".csv" else pq.ParquetWriter(p, types))
            for p in paths
        }
        for batch in batches:
            for path, writer in writers.items():
                writer.write_batch(spreadsheet_safe(batch) if path.suffix == ".csv" else batch)
    return paths


def export(
    engine: Engine,
    filters: Filters,
    folder: Path,
    formats: Sequence[str],
    with_bodies: bool,
    drop_ids: bool = False,
    progress: Callable[[int], None] = lambda comments: None,
) -> Written:
    """The export's files in `folder`, replacing an earlier export's there (and how many comments were not scored
    yet); refused if the filters match nothing. `progress` hears the comments written so far after each batch."""
    columns = comment_columns(with_bodies, drop_ids)
    with Session(engine) as session:
        check_filters(session, filters)
        _make_folder(folder)
        # one export at a time into a folder: another's scratch folder is not a dead one's to remove
        busy = CivmonError(
            f"another civmon export is writing into {folder}", "wait for it to finish, or pass another --out"
        )
        with exclusive(folder, busy), _told_as_civmon_errors(folder):
            _remove_scratch(folder)  # a killed export's: it holds what a --drop-ids export leaves out
            _check_replaceable(folder)
            # mkdtemp makes the scratch folder 0700: files are made 0600 in it before they are moved out
            with tempfile.TemporaryDirectory(dir=folder, prefix=SCRATCH_PREFIX) as scratch:
                counted = Counted(progress)
                staged = _write_tables(session, filters, columns, formats, drop_ids, Path(scratch), counted)
                return Written(_publish(staged, folder), counted.unscored)


def _write_tables(
    session: Session,
    filters: Filters,
    columns: list[str],
    formats: Sequence[str],
    drop_ids: bool,
    scratch: Path,
    counted: Counted,
) -> list[Path]:
    """The comments, the rollups and the data dictionary, written in the scratch folder."""
    shared = ExportPseudonyms() if drop_ids else None  # one key for both tables: communities match
    staged = write(
        counted(comment_batches(session, filters, columns, shared)), schema(columns), scratch, "comments", formats
    )
    rows = list(rollup_rows(session, filters, shared))  # one row per bucket: small
    rollup_schema = schema(list(ROLLUP_COLUMNS))
    rollups = iter([pa.RecordBatch.from_pylist(rows, schema=rollup_schema)] if rows else [])
    staged += write(rollups, rollup_schema, scratch, "rollups", formats)
    dictionary = scratch / DICTIONARY
    authors = describe(stored_keying(session))
    dictionary.write_text(data_dictionary(filters, columns, formats, drop_ids, authors), encoding="utf-8")
    return [*staged, dictionary]


@dataclass(frozen=True)
class Written:
    paths: list[Path]
    unscored: int  # live comments the model version has not scored yet


class Counted:
    """The comment batches as they are written: rows for the progress, and the live comments not scored yet."""

    def __init__(self, progress: Callable[[int], None]) -> None:
        self.progress, self.done, self.unscored = progress, 0, 0

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield batch  # counted once the writers took it: the figure is rows written
            self.done += batch.num_rows
            self.unscored += pc.sum(pc.equal(batch.column("skip_reason"), NOT_SCORED_YET)).as_py() or 0
            self.progress(self.done)


@contextlib.contextmanager
def _told_as_civmon_errors(folder: Path) -> Iterator[None]:
    """A folder that cannot be written (permissions, a full disk, a folder where a file must go) is the user's
    to mend: said plainly, not as a traceback."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise CivmonError(
            f"cannot write the export into {folder}: {exc.strerror or exc}{where}",
            "pass --out a folder you can write to, with room for the export",
        ) from None


def _remove_scratch(folder: Path) -> None:
    for scratch in folder.glob(f"{SCRATCH_PREFIX}*"):
        shutil.rmtree(scratch)


def _check_replaceable(folder: Path) -> None:
    """An export replaces the files of the export before it: in a folder holding other files, refused, since
    comments.csv or rollups.parquet there may be the user's own."""
    dictionary = folder / DICTIONARY
    if dictionary.is_file() and dictionary.read_text(encoding="utf-8", errors="replace").startswith(HEADING):
        return
    if found := sorted(p.name for p in folder.iterdir()):
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5:,} more" if len(found) > 5 else "")
        raise CivmonError(
            f"--out {folder} holds files that are not a civmon export ({shown})",
            "pass a new or empty folder, or the folder of an earlier export (which the export replaces)",
        )


def _make_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise CivmonError(f"--out {folder} is a file", "pass a folder: the export writes several files into it")
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise CivmonError(
            f"cannot create the folder {folder}: {exc.strerror}", "pass --out a folder you can write to"
        ) from None


def _publish(staged: list[Path], folder: Path) -> list[Path]:
    """Move the finished files into place; an earlier export's tables in formats not written now go."""
    for name in TABLES:
        for fmt in FORMATS:
            (folder / f"{name}.{fmt}").unlink(missing_ok=True)
    for path in staged:
        path.chmod(FILE_MODE)  # bodies and pseudonyms: as private as the database and the key
        os.replace(path, folder / path.name)
    return [folder / path.name for path in staged]


def data_dictionary(
    filters: Filters, columns: Sequence[str], formats: Sequence[str], drop_ids: bool, authors: str
) -> str:
    """The dictionary's text; `authors` says how the store keeps authors (`authorship.describe`)."""
    meanings = COMMENT_COLUMNS | (SHARED_MEANINGS if drop_ids else {})
    lines = [
        HEADING,
        "",
        f"Model version: `{filters.model_version}`.",
        "",
        "## comments (one row per comment)",
        "",
        "| column | meaning |",
        "|---|---|",
    ]
    lines += [f"| {c} | {meanings[c]} |" for c in columns]
    lines += [
        "",
        "## rollups (one row per community, bucket and bucket start)",
        "",
        "Computed from the exported comments when the export was made. Only buckets wholly inside the export's "
        "period (`--since`, `--until`): a bucket cut by either end would count comments that the comments table "
        "leaves out. An interval is kept within its score's range (a bucket of one score: the whole range).",
        "",
        "| column | meaning |",
        "|---|---|",
    ]
    lines += [f"| {c} | {m} |" for c, m in ROLLUP_COLUMNS.items()]
    lines += [
        "",
        "Means carry 95% Student t intervals, shares 95% Wilson intervals. Metric definitions and the "
        "minimum samples below which the dashboard hides them: `monitor/metrics/definitions.py`.",
        "",
        "## Privacy",
        "",
        SHARED_NOTE if drop_ids else IDENTIFYING_NOTE.format(authors=authors),
    ]
    if "csv" in formats:
        lines += ["", "## CSV and spreadsheets", "", CSV_NOTE]
    return "\n".join(lines) + "\n"
