"""Schema management: Alembic migrations applied by `civmon init`, and the check that
refuses to run against a database whose schema is not the one this code expects."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from monitor.errors import CivmonError
from monitor.store.db import check_connection, display_url, driver_reason, make_engine, sqlite_path

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "the package ships no migrations"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; return (before, after)."""
    before = _usable_revision(engine)
    config = _alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except DBAPIError as exc:  # tables that are not what the recorded revision says (a hand edit, a mixed restore)
        raise CivmonError(
            f"the database {display_url(engine.url)} does not hold the tables its recorded schema "
            f"({before or 'none'}) says: {driver_reason(exc)}; nothing was changed",
            "restore it from a backup, or point [database] url at a new database and run `civmon init`",
        ) from None
    return before, head_revision()


def _known_revisions() -> set[str]:
    return {rev.revision for rev in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def _newer_schema(engine: Engine, revision: str) -> CivmonError:
    return CivmonError(
        f"the database {display_url(engine.url)} was migrated by a newer civmon (schema {revision})",
        "upgrade civmon to the version that wrote it",
    )


def _usable_revision(engine: Engine) -> str | None:
    """The schema revision recorded in the database (None: not initialised), or a CivmonError where a newer civmon
    wrote it: the one reading of the revision that init, the checks and `config check` share."""
    current = current_revision(engine)
    if current is not None and current not in _known_revisions():
        raise _newer_schema(engine, current)
    return current


def require_current(engine: Engine) -> None:
    """Raise a CivmonError telling the user what to do unless the schema is at head."""
    current, head = _usable_revision(engine), head_revision()
    if current == head:
        return
    if current is None:
        raise CivmonError(
            f"the database {display_url(engine.url)} is not initialised", "run `civmon init` to create its tables"
        )
    raise CivmonError(
        f"the database {display_url(engine.url)} has schema {current}, this civmon needs {head}",
        "back the database up, then run `civmon init` to apply the migrations",
    )


def store_state(url: str) -> tuple[str, Engine | None]:
    """What `civmon init` would find at `url`, found without changing it (a missing SQLite file is not created), and
    an engine on it, read-only, where it is at this civmon's schema; a CivmonError where this civmon cannot use it."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return "not created yet (`civmon init` creates it)", None
    engine = make_engine(url, readonly=True)
    try:
        state, current = _state(engine)
    except BaseException:
        engine.dispose()
        raise
    if current:
        return state, engine
    engine.dispose()
    return state, None


def _state(engine: Engine) -> tuple[str, bool]:
    """What init would find, and whether the schema is this civmon's."""
    check_connection(engine)
    try:
        current = _usable_revision(engine)
    except DBAPIError as exc:  # a file that is no SQLite database, a table civmon did not make
        raise CivmonError(
            f"{display_url(engine.url)} is not a database civmon can use: {driver_reason(exc)}",
            "point [database] url at civmon's database, or at a new one and run `civmon init`",
        ) from None
    if current is None:
        return "reachable, not initialised yet (`civmon init` creates its tables)", False
    if current != head_revision():
        return f"reachable, schema {current} (`civmon init` migrates it to {head_revision()})", False
    return f"reachable, schema {current} (current)", True


def open_store(url: str, *, readonly: bool = False) -> Engine:
    """An engine on a reachable database whose schema this code can use, or a CivmonError."""
    engine = make_engine(url, readonly=readonly)
    check_connection(engine)
    require_current(engine)
    return engine
