"""Alembic environment: civmon hands it an open connection (see monitor.store.schema)."""

from alembic import context

from monitor.store.models import Base

connection = context.config.attributes["connection"]
# APScheduler keeps its job table in the same database and creates it itself.
OWN_TABLES = set(Base.metadata.tables)


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return type_ != "table" or name in OWN_TABLES


context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    include_object=include_object,
    render_as_batch=True,  # SQLite alters tables by copying them; batch mode does that
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
