"""store_facts: how the store's authors are keyed, so that no writer mixes user names and pseudonyms or two keys

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 18:00:00

A store that already holds authors is classified once, here, from what they look like: pseudonyms are 16
lower-case hex digits (a user name of that shape is rare enough to ignore), anything else is a user name.
The key they were made with cannot be known; the first writer with a key adopts it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PSEUDONYM = "^[0-9a-f]{16}$"
# the values monitor.store.authorship reads
USER_NAMES, UNRECORDED_KEY, MIXED = "user names", "pseudonyms, key not recorded", "user names and pseudonyms"


def upgrade() -> None:
    facts = op.create_table(
        "store_facts",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_store_facts")),
    )
    if (keying := _stored_keying()) is not None:
        op.bulk_insert(facts, [{"name": "author_keying", "value": keying}])


def _stored_keying() -> str | None:
    names = pseudonyms = False
    for table in ("threads", "comments"):
        author = sa.column("author")
        stored = sa.table(table, author)
        names = names or _any(stored, sa.not_(author.regexp_match(PSEUDONYM)))
        pseudonyms = pseudonyms or _any(stored, author.regexp_match(PSEUDONYM))
    if names and pseudonyms:
        return MIXED
    return USER_NAMES if names else UNRECORDED_KEY if pseudonyms else None


def _any(table: sa.TableClause, where: sa.ColumnElement[bool]) -> bool:
    query = sa.select(sa.exists().where(table.c.author.is_not(None), where))
    return bool(op.get_bind().scalar(query))


def downgrade() -> None:
    op.drop_table("store_facts")
