"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 11:36:07.270831
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "communities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("created_utc", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_communities")),
        sa.UniqueConstraint("platform", "name", name=op.f("uq_communities_platform_name")),
    )
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("created_utc", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_model_versions")),
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Text(), nullable=False),
        sa.Column("updated_utc", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_checkpoints_community_id_communities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
        sa.UniqueConstraint("community_id", "stream", name=op.f("uq_checkpoints_community_id_stream")),
    )
    op.create_table(
        "collection_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("started_utc", sa.BigInteger(), nullable=False),
        sa.Column("finished_utc", sa.BigInteger(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "running",
                "ok",
                "partial",
                "failed",
                name="run_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("items_new", sa.Integer(), nullable=False),
        sa.Column("items_updated", sa.Integer(), nullable=False),
        sa.Column("items_deleted", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_collection_runs_community_id_communities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_runs")),
    )
    with op.batch_alter_table("collection_runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_community_started", ["community_id", "started_utc"], unique=False)

    op.create_table(
        "threads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.String(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("author", sa.String(length=64), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("permalink", sa.Text(), nullable=True),
        sa.Column("platform_score", sa.Integer(), nullable=True),
        sa.Column("num_comments", sa.Integer(), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "live", "deleted", "removed", name="item_state", native_enum=False, create_constraint=True, length=16
            ),
            nullable=False,
        ),
        sa.Column("created_utc", sa.BigInteger(), nullable=False),
        sa.Column("first_seen_utc", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_utc", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["community_id"], ["communities.id"], name=op.f("fk_threads_community_id_communities")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_threads")),
        sa.UniqueConstraint("community_id", "platform_id", name=op.f("uq_threads_community_id_platform_id")),
    )
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.String(length=32), nullable=False),
        sa.Column("parent_platform_id", sa.String(length=32), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(length=64), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("body_hash", sa.String(length=32), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "live", "deleted", "removed", name="item_state", native_enum=False, create_constraint=True, length=16
            ),
            nullable=False,
        ),
        sa.Column("platform_score", sa.Integer(), nullable=True),
        sa.Column("permalink", sa.Text(), nullable=True),
        sa.Column("created_utc", sa.BigInteger(), nullable=False),
        sa.Column("edited_utc", sa.BigInteger(), nullable=True),
        sa.Column("first_seen_utc", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_utc", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_comments_community_id_communities")
        ),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.id"], name=op.f("fk_comments_thread_id_threads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
        sa.UniqueConstraint("community_id", "platform_id", name=op.f("uq_comments_community_id_platform_id")),
    )
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.create_index("ix_comments_community_created", ["community_id", "created_utc"], unique=False)
        batch_op.create_index("ix_comments_thread", ["thread_id"], unique=False)

    op.create_table(
        "scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("hostility", sa.Float(), nullable=True),
        sa.Column("respect", sa.Float(), nullable=True),
        sa.Column("warmth", sa.Float(), nullable=True),
        sa.Column("insult", sa.Float(), nullable=True),
        sa.Column("threat", sa.Float(), nullable=True),
        sa.Column("identity_attack", sa.Float(), nullable=True),
        sa.Column("profanity", sa.Float(), nullable=True),
        sa.Column("alliance", sa.Float(), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("scored_utc", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"], ["comments.id"], name=op.f("fk_scores_comment_id_comments"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["model_version"], ["model_versions.version"], name=op.f("fk_scores_model_version_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scores")),
        sa.UniqueConstraint("comment_id", "model_version", name=op.f("uq_scores_comment_id_model_version")),
    )
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.create_index("ix_scores_stale", ["model_version", "stale"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_index("ix_scores_stale")

    op.drop_table("scores")
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index("ix_comments_thread")
        batch_op.drop_index("ix_comments_community_created")

    op.drop_table("comments")
    op.drop_table("threads")
    with op.batch_alter_table("collection_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_community_started")

    op.drop_table("collection_runs")
    op.drop_table("checkpoints")
    op.drop_table("model_versions")
    op.drop_table("communities")
