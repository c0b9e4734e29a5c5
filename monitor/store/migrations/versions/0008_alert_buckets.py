"""alerts.bucket and rollup_state.alerts_utc: every bucket that changed is checked once, and an hour's alert and
its day's, which start at the same midnight, are two alerts; model_versions.used_utc: the dashboard, alerts and
exports follow the model a scorer last started with, not the one registered last

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 22:30:00

An alert from before this revision did not record its bucket. A thread's alert is an hour's, and so is one
starting off midnight; one starting at midnight may be either, and keeps none (NULL: not recorded). A model
version was last used, as far as is known, when it was registered.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KEY = "uq_alerts_community_id_kind_subject_start_utc"
NEW_KEY = "uq_alerts_community_id_kind_subject_bucket_start_utc"
versions = sa.table("model_versions", sa.column("created_utc", sa.BigInteger), sa.column("used_utc", sa.BigInteger))
alerts = sa.table(
    "alerts", sa.column("kind", sa.String), sa.column("start_utc", sa.BigInteger), sa.column("bucket", sa.String)
)


def upgrade() -> None:
    with op.batch_alter_table("rollup_state") as batch:
        batch.add_column(sa.Column("alerts_utc", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("bucket", sa.String(length=8), nullable=True))
        batch.drop_constraint(OLD_KEY, type_="unique")
        batch.create_unique_constraint(NEW_KEY, ["community_id", "kind", "subject", "bucket", "start_utc"])
    hours = (alerts.c.kind == "thread") | (alerts.c.start_utc % 86_400 != 0)
    op.execute(alerts.update().where(hours).values(bucket="hour"))
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("used_utc", sa.BigInteger(), nullable=True))
    op.execute(versions.update().values(used_utc=versions.c.created_utc))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("used_utc")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint(NEW_KEY, type_="unique")
        batch.create_unique_constraint(OLD_KEY, ["community_id", "kind", "subject", "start_utc"])
        batch.drop_column("bucket")
    with op.batch_alter_table("rollup_state") as batch:
        batch.drop_column("alerts_utc")
