"""store_facts: how the store's authors are keyed, so that no writer mixes user names and pseudonyms or two keys

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 18:00:00

A store that already holds authors is classified once, here, from what they look like: pseudonyms are 16
lower-case hex digits (a user name of that shape is rare enough to ignore), anything else is a user name.
The key they were made with cannot be known; the first writer with a key adopts it.

A downgrade keeps the table (civmon 0006 never reads it), so that a downgrade and upgrade again cannot forget
which key the pseudonyms were made with, and let another key in.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PSEUDONYM = "^[0-9a-f]{16}$"
# the values monitor.store.authorship reads (a migration keeps its own copy: later code may change)
FACT, USER_NAMES, UNRECORDED_KEY, MIXED = (
    "author_keying",
    "user names",
    "pseudonyms, key not recorded",
    "user names and pseudonyms",
)
facts = sa.table("store_facts", sa.column("name", sa.String), sa.column("value", sa.Text))


def upgrade() -> None:
    if not sa.inspect(op.get_bind()).has_table("store_facts"):
        op.create_table(
            "store_facts",
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("name", name=op.f("pk_store_facts")),
        )
    recorded = op.get_bind().scalar(sa.select(facts.c.value).where(facts.c.name == FACT))
    if recorded is None and (keying := _stored_keying()) is not None:
        op.bulk_insert(facts, [{"name": FACT, "value": keying}])


def _stored_keying() -> str | None:
    names = pseudonyms = False
    for table in ("threads", "comments"):
        author = sa.column("author")
        stored = sa.table(table, author)
        # the length: SQLite's regexp is Python's re.search, whose $ also matches before a final line break
        shaped = sa.and_(sa.func.length(author) == 16, author.regexp_match(PSEUDONYM))
        names = names or _any(stored, sa.not_(shaped))
        pseudonyms = pseudonyms or _any(stored, shaped)
    if names and pseudonyms:
        return MIXED
    return USER_NAMES if names else UNRECORDED_KEY if pseudonyms else None


def _any(table: sa.TableClause, where: sa.ColumnElement[bool]) -> bool:
    query = sa.select(sa.exists().where(table.c.author.is_not(None), where))
    return bool(op.get_bind().scalar(query))


def downgrade() -> None:
    """Keeps store_facts: see above."""
