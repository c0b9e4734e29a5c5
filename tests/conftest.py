"""Shared fixtures: real SQLite files and real PostgreSQL databases.

PostgreSQL tests run against $CIVMON_TEST_POSTGRES_URL (default: the local server,
trust auth, database `test`), each in a database of its own that is dropped afterwards.
Where no server answers they skip with the reason, unless CIVMON_REQUIRE_POSTGRES=1
(set by .ci/run), where they fail: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from monitor.config import PrivacySettings
from monitor.errors import CivmonError
from monitor.privacy import Pseudonymiser
from monitor.store import schema
from monitor.store.db import check_connection, make_engine, scratch_postgres_database

PROJECT = Path(__file__).resolve().parents[1]
CIVMON = [sys.executable, "-m", "monitor"]


def command_env(**extra: str) -> dict[str, str]:
    """What a user's civmon command sees: none of this shell's CIVMON_ or praw_ settings, no terminal forced on
    (its output goes to a pipe), a wide console, `extra`."""
    forced = ("CIVMON_", "praw_", "FORCE_COLOR", "TTY_COMPATIBLE")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(forced)}
    return {**clean, "COLUMNS": "200", **extra}


def civmon(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """The civmon command run in `cwd`, as a user runs it."""
    return subprocess.run(
        [*CIVMON, *args], cwd=cwd, env=command_env(**(env or {})), capture_output=True, text=True, timeout=timeout
    )


def start_civmon(cwd: Path, *args: str, env: dict[str, str] | None = None, **streams: Any) -> subprocess.Popen[str]:
    """The civmon command started in `cwd`, as a user starts it, and left running; its output one text pipe
    (stderr merged into stdout) unless `streams` (Popen's stdout, stderr, text) say otherwise."""
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True} | streams
    return subprocess.Popen([*CIVMON, *args], cwd=cwd, env=command_env(**(env or {})), **options)


POSTGRES_URL = os.environ.get("CIVMON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_KEY = b"9c1f4e7a2b8d5063e1a7c4f90b2d6e83a5c7f1e9d3b60a2c8e4f7a1b5d9c3e60"  # 256 bits, as civmon init writes


def wait_for(condition: Callable[[], object], timeout: float = 120.0, every: float = 0.2) -> None:
    """Poll `condition` every `every` seconds until it holds; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


def shared_data() -> Path:
    """../shared/data from the project root (or $CIVMON_SHARED_DATA)."""
    return Path(os.environ.get("CIVMON_SHARED_DATA", PROJECT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def postgres_available() -> None:
    engine = make_engine(POSTGRES_URL)
    try:
        check_connection(engine)
    except CivmonError as exc:
        if os.environ.get("CIVMON_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{exc.message} (CIVMON_REQUIRE_POSTGRES=1: CI must run the PostgreSQL tests)")
        pytest.skip(f"PostgreSQL tests skipped: {exc.message}")
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'civmon.db'}"
        return
    request.getfixturevalue("postgres_available")
    with scratch_postgres_database(POSTGRES_URL) as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a migrated, empty database."""
    engine = make_engine(db_url)
    schema.upgrade(engine)
    yield engine
    engine.dispose()


REFUSE_COMMENT_INSERTS = {
    "sqlite": ["CREATE TRIGGER refuse BEFORE INSERT ON comments BEGIN SELECT RAISE(ABORT, 'refused'); END"],
    "postgresql": [
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse BEFORE INSERT ON comments FOR EACH ROW EXECUTE FUNCTION refuse()",
    ],
}


def refuse_comment_inserts(engine: Engine) -> None:
    """A database that refuses every new comment: a write that fails with the rows in SQLAlchemy's text."""
    with engine.begin() as connection:
        for statement in REFUSE_COMMENT_INSERTS[engine.dialect.name]:
            connection.exec_driver_sql(statement)


@pytest.fixture
def privacy(tmp_path: Path) -> PrivacySettings:
    return PrivacySettings(key_file=tmp_path / "civmon.key")


@pytest.fixture
def pseudonymiser() -> Pseudonymiser:
    return Pseudonymiser(TEST_KEY)


@pytest.fixture(scope="session")
def untrained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An alliance artefact with fresh LoRA adapters and seeded random heads: the real network and
    loading code, without waiting for training (the shipped model is tested on its own)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from monitor.scoring.network import AllianceNetwork, DimensionCard, ModelCard, load_base, save_artefact

    torch.manual_seed(0)
    _, base = load_base(128)
    encoder = get_peft_model(base, LoraConfig(r=4, target_modules=["query", "value"]))
    network = AllianceNetwork(encoder, ["hostility", "warmth", "respect"])
    card = ModelCard(
        name="test-untrained",
        encoder="all-MiniLM-L6-v2",
        max_length=128,
        dimensions={d: DimensionCard(scale=4.0, threshold=0.5) for d in network.dimensions},
    )
    folder = tmp_path_factory.mktemp("untrained-model")
    save_artefact(network, card, folder)
    return folder


def migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    """Bring the schema to `revision` (an upgrade, or with `down` a downgrade), as an older civmon left it."""
    config = schema._alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def schema_drift(engine: Engine, *tables: str) -> list[object]:
    """Where the migrated tables named differ from what the models describe (nothing, where the migrations are
    right)."""
    from monitor.store.models import Base

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return [d for d in compare_metadata(context, Base.metadata) if any(t in repr(d) for t in tables)]
