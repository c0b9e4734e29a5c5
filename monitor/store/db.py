"""Engines and sessions for SQLite (embedded default) and PostgreSQL (deployments).

SQLite runs in WAL mode with a busy timeout, and writers open their transactions
with BEGIN IMMEDIATE: a deferred transaction that reads first and writes later
cannot wait for the lock when another process committed in between, and fails with
"database is locked" at once. Readers (the dashboard) get deferred, query-only
connections and never block a writer.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from monitor.errors import CivmonError
from monitor.privacy import warn_if_readable_by_others

SQLITE_BUSY_TIMEOUT_S = 60
POSTGRES_CONNECT_TIMEOUT_S = 5


def normalise_url(url: str) -> URL:
    """Plain ``postgresql://`` means psycopg 3, the driver civmon installs."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def display_url(url: str | URL) -> str:
    """The URL as it may be printed: password hidden, and the query left out (libpq takes `?password=` too)."""
    parsed = url if isinstance(url, URL) else make_url(url)
    return parsed.set(query={}).render_as_string(hide_password=True)


def make_engine(url: str, *, readonly: bool = False) -> Engine:
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, readonly)
    # No server-side prepared statements: a generic plan made while a table was empty (seq scan)
    # would otherwise stay for the connection's life and make bulk loads quadratic.
    connect_args: dict[str, Any] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S, "prepare_threshold": None}
    if readonly:
        connect_args["options"] = "-c default_transaction_read_only=on"
    return create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)


def _sqlite_engine(url: URL, readonly: bool) -> Engine:
    _prepare_sqlite_path(url, readonly)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        # text another tool stored as bytes that are not UTF-8 is read with U+FFFD, not an error on every read
        dbapi_connection.text_factory = functools.partial(str, encoding="utf-8", errors="replace")
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",  # durable in WAL mode up to the last checkpointed commit
            "foreign_keys=ON",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}",
            f"query_only={int(readonly)}",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def sqlite_path(url: str | URL) -> Path | None:
    """The file a SQLite URL names (None for PostgreSQL and in-memory databases)."""
    parsed = make_url(str(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser().resolve()


def _prepare_sqlite_path(url: URL, readonly: bool) -> None:
    path = sqlite_path(url)
    if path is None:
        return
    if readonly and not path.exists():  # a reader must not leave an empty database behind
        raise CivmonError(f"the SQLite database {path} does not exist", "run `civmon init` to create it")
    folder = path.parent
    if not folder.is_dir():
        raise CivmonError(
            f"cannot open the SQLite database {url.database}: folder {folder} does not exist",
            "create the folder, or set [database] url to a path in an existing folder",
        )
    if not readonly:
        # Pseudonyms and comment bodies: private to this user. SQLite gives its -wal and -shm files the
        # database file's mode, so creating it 0600 (an empty file is an empty database) covers all three.
        with suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    warn_if_readable_by_others(path)


def driver_reason(exc: DBAPIError) -> str:
    """The first line of the driver's own message: not SQLAlchemy's text, which quotes statement and parameters."""
    lines = str(exc.orig).strip().splitlines() if exc.orig else []
    return lines[0] if lines else type(exc).__name__


def check_connection(engine: Engine) -> None:
    """Connect once, turning a driver error into a message that says what to check."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as exc:
        reason = driver_reason(exc)
        if "database is locked" in reason:  # SQLite waited its busy timeout behind another writer
            raise CivmonError(
                f"the database {display_url(engine.url)} stayed locked by another process for "
                f"{SQLITE_BUSY_TIMEOUT_S} s",
                "wait for the other civmon command to finish (or stop it), then try again",
            ) from None
        if "file is not a database" in reason:  # SQLite's word for any other file
            raise CivmonError(
                f"{display_url(engine.url)} names a file that is not a SQLite database",
                "point [database] url (or CIVMON_DATABASE__URL) at civmon's database, or at a new file",
            ) from None
        raise CivmonError(
            f"cannot connect to the database {display_url(engine.url)}: {reason}",
            "check [database] url (or CIVMON_DATABASE__URL) and that the database server is running and reachable",
        ) from None


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work is committed whole, or rolled back whole on any error."""
    with session_factory(engine).begin() as session:
        yield session


def dialect_insert(session: Session, table: Table) -> Any:
    """INSERT with ON CONFLICT, in the dialect of the session's database."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def lock_table(session: Session, table: Table, mode: str) -> None:
    """Hold a PostgreSQL table lock until the transaction ends, e.g. "SHARE ROW EXCLUSIVE" to serialise writers that
    delete and insert the same rows while readers go on. SQLite needs none: BEGIN IMMEDIATE serialises writers."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"LOCK TABLE {table.name} IN {mode} MODE"))


def database_now(session: Session) -> int:
    """Seconds since the epoch on the database's clock: what processes on many machines agree on
    (SQLite has no server, and its writers share this machine's clock)."""
    if session.get_bind().dialect.name == "sqlite":
        return int(time.time())
    return int(session.scalar(text("SELECT extract(epoch FROM clock_timestamp())")))


@contextmanager
def scratch_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server of `server_url`, dropped afterwards (tests, benchmarks)."""
    admin = create_engine(
        normalise_url(server_url),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S},
    )
    name = f"civmon_scratch_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
