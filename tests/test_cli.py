"""The real `civmon` console script, run as a user would, in a fresh folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import text

from monitor.store import schema
from monitor.store.db import make_engine, transaction
from monitor.store.models import CollectionRun, Community, RunStatus

from conftest import PROJECT, TEST_KEY, civmon, start_civmon


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copy(PROJECT / "config" / "civmon.example.toml", tmp_path / "civmon.toml")
    return tmp_path


def add_failed_run(db_url: str, community: str, error: str) -> None:
    engine = make_engine(db_url)
    with transaction(engine) as session:
        run = CollectionRun(job="collect", started_utc=1_700_000_000, status=RunStatus.FAILED, error=error)
        run.community_id = session.query(Community).filter_by(name=community).one().id
        session.add(run)
    engine.dispose()


def test_init_then_status(workdir, db_url):
    env = {"CIVMON_DATABASE__URL": db_url}
    first = civmon(workdir, "init", env=env)
    assert first.returncode == 0, first.stderr
    assert f"migrated empty → {schema.head_revision()}" in first.stdout and "3 communities" in first.stdout
    assert (workdir / "civmon.key").stat().st_mode & 0o777 == 0o600

    again = civmon(workdir, "init", env=env)
    assert again.returncode == 0 and "already current" in again.stdout
    assert "created pseudonymisation key" not in again.stdout

    add_failed_run(db_url, "changemyview", "subreddit is private")
    status = civmon(workdir, "status", env=env)
    assert status.returncode == 0, status.stderr
    assert "reddit/AskHistorians" in status.stdout and "hackernews/top" in status.stdout
    assert "failed: subreddit is private" in status.stdout and "2023-11-14 22:13" in status.stdout


def test_status_before_init_says_run_init(workdir):
    result = civmon(workdir, "status")
    assert result.returncode == 2
    assert "civmon init" in result.stderr and "Traceback" not in result.stderr


def test_config_check_reports_missing_secret_and_key(workdir):
    result = civmon(workdir, "config", "check")
    assert result.returncode == 1
    assert "Reddit client_id and client_secret not set" in result.stdout
    assert "praw_client_id" in result.stdout
    assert "privacy.key_file" in result.stdout


def test_config_check_passes_with_credentials(workdir):
    civmon(workdir, "init")
    result = civmon(workdir, "config", "check", env={"praw_client_id": "id", "praw_client_secret": "secret"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid; 3 communities" in result.stdout
    assert "secret" not in result.stdout


def test_config_check_names_a_model_folder_with_no_model(workdir):
    env = {"praw_client_id": "id", "praw_client_secret": "secret", "CIVMON_MODEL__NAME": "./models/my-modle"}
    civmon(workdir, "init", env=env)
    result = civmon(workdir, "config", "check", env=env)
    assert result.returncode == 1 and "model.name: [model] name './models/my-modle' names a folder" in result.stdout


def test_config_check_changes_nothing_and_says_what_init_would_do(workdir):
    env = {"praw_client_id": "id", "praw_client_secret": "secret", "CIVMON_PSEUDONYM_KEY": TEST_KEY.decode()}
    fresh = civmon(workdir, "config", "check", env=env)
    assert fresh.returncode == 0 and "civmon.db not created yet (`civmon init` creates it)" in fresh.stdout
    assert not (workdir / "civmon.db").exists()  # a check that left an empty database would hide a mistyped path

    civmon(workdir, "init", env=env)
    engine = make_engine(f"sqlite:///{workdir / 'civmon.db'}")
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    newer = civmon(workdir, "config", "check", env=env)
    assert newer.returncode == 1 and "migrated by a newer civmon (schema 0099)" in newer.stdout

    (workdir / "notes.db").write_text("my notes, not a database\n")
    other = civmon(workdir, "config", "check", env={**env, "CIVMON_DATABASE__URL": "sqlite:///notes.db"})
    assert other.returncode == 1 and "names a file that is not a SQLite database" in other.stdout
    assert "server is running" not in other.stdout and "Traceback" not in other.stderr
    assert (workdir / "notes.db").read_text() == "my notes, not a database\n"


def test_unreachable_database(workdir):
    env = {"CIVMON_DATABASE__URL": "postgresql://civmon:hunter2@127.0.0.1:9/civmon"}
    check = civmon(workdir, "config", "check", env=env)
    assert check.returncode == 1
    assert "cannot connect to the database" in check.stdout and "Connection refused" in check.stdout
    assert "hunter2" not in check.stdout
    init = civmon(workdir, "init", env=env)
    assert init.returncode == 2 and "server is running" in init.stderr and "Traceback" not in init.stderr


def test_sqlite_in_missing_folder(workdir):
    result = civmon(workdir, "init", env={"CIVMON_DATABASE__URL": "sqlite:///no/such/folder/civmon.db"})
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_bad_config_starts_nothing(workdir):
    (workdir / "civmon.toml").write_text(
        '[database]\nurl = "sqlite:///civmon.db"\n[collector]\ninterval_minutes = "x"\n'
    )
    result = civmon(workdir, "init")
    assert result.returncode == 2
    assert "collector.interval_minutes" in result.stderr and "nothing was started" in result.stderr
    assert not (workdir / "civmon.db").exists()


def test_tables_written_to_a_pipe_keep_their_text_whole():
    """`civmon eval > eval.log` (cron, CI): no terminal width to fit, so no model name folded a letter a line."""
    model = "alliance-minilm@56ba9d9fb5a9+onnx-int8"
    code = (
        "from monitor.cli import eval_table, out; from monitor.scoring.evaluate import Row; "
        f"out.print(eval_table([Row('{model}', 'goemotions_hostile', 'hostility', 5421, 1.0, 0.874, 0.55, 0.53, "
        "0.02, None, (0.862, 0.885))]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert model in result.stdout and "goemotions_hostile" in result.stdout and "0.862–0.885" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--output", "out.jsonl"), "only apply to --input"),
        (("--input", "corpus.csv", "--output", "out.jsonl", "--limit", "3"), "--limit applies to the store"),
    ],
)
def test_score_refuses_options_it_would_ignore(workdir, args, message):
    result = civmon(workdir, "score", *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_config_check_takes_the_file_as_people_type_it(workdir):
    (workdir / "other.toml").write_text('[collector]\ninterval_minutes = "x"\n')
    positional = civmon(workdir, "config", "check", "other.toml")
    assert positional.returncode == 2 and "collector.interval_minutes" in positional.stderr, positional.stderr
    both = civmon(workdir, "config", "check", "other.toml", "--config", "civmon.toml")
    assert both.returncode == 2 and "two files to check" in both.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("status", "--config", "."), {}, "cannot read the configuration file .: Is a directory"),
        (("config", "check"), {"CIVMON_DATABASE": "garbage"}, "CIVMON_DATABASE: not valid JSON"),
        (("init",), {"CIVMON_COMMUNITIES": "notjson"}, "CIVMON_COMMUNITIES: not valid JSON"),
        (("init",), {"CIVMON_PSEUDONYM_KEY": " "}, "too weak: it is empty"),
    ],
)
def test_mistakes_get_a_message_not_a_traceback(workdir, args, env, message):
    result = civmon(workdir, *args, env=env)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


HOSTILE_NAMES = ["[/oops]", "[bold red]loud[/]", "[link=http://evil.example]x[/link]", "a\\[b]"]


def test_status_prints_names_and_errors_as_text_not_markup(workdir, db_url):
    env = {"CIVMON_DATABASE__URL": db_url}
    assert civmon(workdir, "init", env=env).returncode == 0
    engine = make_engine(db_url)
    with transaction(engine) as session:  # as a dump's names were stored before names were validated
        session.add_all(Community(platform="reddit", name=name, created_utc=1_700_000_000) for name in HOSTILE_NAMES)
    engine.dispose()
    add_failed_run(db_url, "[/oops]", "[/red] closing tag")
    result = civmon(workdir, "status", env=env)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert all(f"reddit/{name}" in result.stdout for name in HOSTILE_NAMES), result.stdout
    assert "failed: [/red] closing tag" in result.stdout


def _listening(pid: int, port: int) -> set[str]:
    """The addresses the process tree under `pid` listens on at `port`."""
    processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return {
        c.laddr.ip
        for p in processes
        for c in p.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }


@pytest.mark.parametrize(
    ("args", "address", "warned"), [((), "127.0.0.1", False), (("--host", "0.0.0.0"), "0.0.0.0", True)]
)
def test_the_dashboard_listens_on_loopback_unless_told_and_warns_then(workdir, args, address, warned):
    port = _free_port()
    process = start_civmon(workdir, "dashboard", "--port", str(port), *args)
    try:
        deadline = time.monotonic() + 60
        while not (addresses := _listening(process.pid, port)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert addresses == {address}
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert ("no login" in output) is warned, output
    assert f"dashboard: http://{address}:{port}" in output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_error_quoting_a_name_cannot_drive_the_terminal(workdir):
    result = civmon(workdir, "status", "--config", "\x1b[2J\x1b]0;PWNED\x07.toml")
    assert result.returncode == 2 and "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "\\x1b[2J\\x1b]0;PWNED\\x07.toml does not exist" in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--port", "99999"), "Invalid value for '--port'"),
        (("--port", "-5"), "Invalid value for '--port'"),
        (("--host", "not a host!"), "is no address of this machine"),
        (("--port", "{busy}"), "cannot listen on 127.0.0.1 port {busy}"),
    ],
)
def test_an_address_the_dashboard_cannot_serve_is_told_before_streamlit_starts(workdir, args, says):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        args = tuple(a.format(busy=port) for a in args)
        result = civmon(workdir, "dashboard", *args, timeout=60)
    assert result.returncode == 2 and says.format(busy=port) in result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "dashboard: http" not in result.stdout
