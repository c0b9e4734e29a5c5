"""scores.skip_reason: why a comment was not scored

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("scores", sa.Column("skip_reason", sa.String(length=200), nullable=True))
    # rows left unscored before reasons were kept: the language says why where it can (hostility is never
    # missing from a scored row, every model gives it)
    op.execute(
        "UPDATE scores SET skip_reason = CASE"
        " WHEN language IS NOT NULL AND language <> 'en' THEN 'not English (language: ' || language || ')'"
        " ELSE 'not scored (its reason was not kept before civmon stored reasons)' END"
        " WHERE hostility IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("scores") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("skip_reason")
