"""A batch of rows in a temporary table, so that set-based SQL compares and writes it in a few statements.

PostgreSQL loads it with COPY, the bulk path it has (psycopg escapes tabs, newlines, backslashes and
`\\N`; NUL never gets this far, `clean_text` drops it); SQLite with one executemany, which runs in C.
The table belongs to the connection, made on first use in any transaction (so a rolled-back one that
made it costs nothing), and is emptied for each batch; PostgreSQL also truncates it at commit, which
leaves no dead rows behind in a table autovacuum never visits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Column, MetaData, Table, delete
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable


class Stage:
    """A temporary table with some of a stored table's columns (and any others a batch needs)."""

    def __init__(self, name: str, like: Table, names: Sequence[str], *extra: Column[Any]) -> None:
        columns = [Column(n, like.c[n].type) for n in names]
        self.table = Table(
            name, MetaData(), *columns, *extra, prefixes=["TEMPORARY"], postgresql_on_commit="DELETE ROWS"
        )
        self.names = [c.name for c in self.table.columns]

    def fill(self, session: Session, rows: Iterable[tuple[Any, ...]]) -> Table:
        """The table holding exactly `rows` (tuples in the order of `names`), in the session's transaction."""
        connection = session.connection()
        connection.execute(CreateTable(self.table, if_not_exists=True))
        connection.execute(delete(self.table))  # a second batch in one transaction
        return self.append(session, rows)

    def append(self, session: Session, rows: Iterable[tuple[Any, ...]]) -> Table:
        """The table with `rows` added to those `fill` and earlier appends put in."""
        connection = session.connection()
        columns = ", ".join(self.names)
        if connection.dialect.name == "postgresql":
            with connection.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
                with cursor.copy(f"COPY {self.table.name} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        elif rows := list(rows):
            placeholders = ", ".join("?" for _ in self.names)
            connection.exec_driver_sql(f"INSERT INTO {self.table.name} ({columns}) VALUES ({placeholders})", rows)
        return self.table
