"""thread stubs and tree refresh times

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 11:52:50.242199
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tree_refreshed_utc", sa.BigInteger(), nullable=True))
        batch_op.alter_column("created_utc", existing_type=sa.BIGINT(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.alter_column("created_utc", existing_type=sa.BIGINT(), nullable=False)
        batch_op.drop_column("tree_refreshed_utc")
