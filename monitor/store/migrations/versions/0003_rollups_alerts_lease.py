"""rollups, alerts, scheduler lease

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 12:21:08.179188
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("acquired_utc", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_utc", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("start_utc", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=True),
        sa.Column("scored", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_utc", sa.BigInteger(), nullable=False),
        sa.Column("delivered_utc", sa.BigInteger(), nullable=True),
        sa.Column("acknowledged_utc", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["community_id"], ["communities.id"], name=op.f("fk_alerts_community_id_communities")),
        sa.ForeignKeyConstraint(
            ["model_version"], ["model_versions.version"], name=op.f("fk_alerts_model_version_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint(
            "community_id", "kind", "subject", "start_utc", name=op.f("uq_alerts_community_id_kind_subject_start_utc")
        ),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_open", ["acknowledged_utc", "created_utc"], unique=False)

    op.create_table(
        "rollup_state",
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("watermark_utc", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version"], ["model_versions.version"], name=op.f("fk_rollup_state_model_version_model_versions")
        ),
        sa.PrimaryKeyConstraint("model_version", name=op.f("pk_rollup_state")),
    )
    op.create_table(
        "rollups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("bucket", sa.String(length=8), nullable=False),
        sa.Column("start_utc", sa.BigInteger(), nullable=False),
        sa.Column("comments", sa.Integer(), nullable=False),
        sa.Column("scored", sa.Integer(), nullable=False),
        sa.Column("hostile", sa.Integer(), nullable=False),
        sa.Column("hostility_sum", sa.Float(), nullable=False),
        sa.Column("hostility_sum2", sa.Float(), nullable=False),
        sa.Column("hostility_sum3", sa.Float(), nullable=False),
        sa.Column("hostility_sum4", sa.Float(), nullable=False),
        sa.Column("respect_n", sa.Integer(), nullable=False),
        sa.Column("respect_sum", sa.Float(), nullable=False),
        sa.Column("respect_sum2", sa.Float(), nullable=False),
        sa.Column("warmth_n", sa.Integer(), nullable=False),
        sa.Column("warmth_sum", sa.Float(), nullable=False),
        sa.Column("warmth_sum2", sa.Float(), nullable=False),
        sa.Column("alliance_n", sa.Integer(), nullable=False),
        sa.Column("alliance_sum", sa.Float(), nullable=False),
        sa.Column("alliance_sum2", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["community_id"], ["communities.id"], name=op.f("fk_rollups_community_id_communities")),
        sa.ForeignKeyConstraint(
            ["model_version"], ["model_versions.version"], name=op.f("fk_rollups_model_version_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollups")),
        sa.UniqueConstraint(
            "community_id",
            "model_version",
            "bucket",
            "start_utc",
            name=op.f("uq_rollups_community_id_model_version_bucket_start_utc"),
        ),
    )
    with op.batch_alter_table("rollups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rollups_lookup", ["model_version", "bucket", "community_id", "start_utc"], unique=False
        )

    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.create_index("ix_comments_first_seen", ["first_seen_utc"], unique=False)

    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.create_index("ix_scores_scored", ["model_version", "scored_utc"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_index("ix_scores_scored")

    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index("ix_comments_first_seen")

    with op.batch_alter_table("rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_rollups_lookup")

    op.drop_table("rollups")
    op.drop_table("rollup_state")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_open")

    op.drop_table("alerts")
    op.drop_table("leases")
