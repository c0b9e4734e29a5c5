"""score_claims: which comments a scoring worker holds, for how long, so many workers share one store

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "score_claims",
        sa.Column("comment_id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("claimed_utc", sa.BigInteger(), nullable=False),
        sa.Column("expires_utc", sa.BigInteger(), nullable=False),
        sa.Column("takeovers", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"], ["comments.id"], name=op.f("fk_score_claims_comment_id_comments"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("comment_id", "model_version", name=op.f("pk_score_claims")),
    )
    op.create_index("ix_score_claims_expires", "score_claims", ["model_version", "expires_utc"])


def downgrade() -> None:
    op.drop_index("ix_score_claims_expires", table_name="score_claims")
    op.drop_table("score_claims")
