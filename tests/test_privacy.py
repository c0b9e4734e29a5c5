"""Pseudonymisation keys and private files: a guessable key is refused, the key and database stay private."""

from __future__ import annotations

import base64
import logging
import os
import secrets
import sqlite3
from pathlib import Path

import pytest

from monitor.config import PrivacySettings
from monitor.errors import CivmonError
from monitor.privacy import (
    KEY_ENV,
    ensure_key_file,
    key_problem,
    load_pseudonymiser,
    warn_if_readable_by_others,
    weak_key_problem,
)
from monitor.store import schema
from monitor.store.db import make_engine

from conftest import civmon

# Keys a user might write, each guessable or empty: pseudonyms would be HMAC(weak key, name), reversible
# by hashing every user name under a handful of key guesses.
WEAK_KEYS = {
    "empty": b"",
    "whitespace": b" \n\t \n",
    "one letter": b"k",
    "a word": b"test key",
    "16 hex bytes": secrets.token_hex(16).encode(),
    "20 base64 bytes": base64.b64encode(secrets.token_bytes(20)),
    "one letter repeated": b"a" * 200,
    "a few letters repeated": b"abab" * 50,
    "a pattern repeated": b"12345678" * 8,
    "hex digits repeated": b"0123456789abcdef" * 4,
    "a password repeated": b"Password1" * 8,
}
STRONG_KEYS = {
    "what civmon init writes": secrets.token_hex(32).encode(),
    "upper-case hex": secrets.token_hex(32).upper().encode(),
    "base64 of 32 bytes": base64.b64encode(secrets.token_bytes(32)),
    "url-safe base64": secrets.token_urlsafe(32).encode(),
    "raw bytes": secrets.token_bytes(32).replace(b"\n", b"x").strip() + b"!",
    "a long passphrase": b"correct horse battery staple, then the mill at dawn by the river Wye",
}


@pytest.mark.parametrize("key", WEAK_KEYS.values(), ids=WEAK_KEYS)
def test_a_weak_key_is_refused_from_the_file_and_the_environment(key, tmp_path, monkeypatch):
    privacy = PrivacySettings(key_file=tmp_path / "civmon.key")
    privacy.key_file.write_bytes(key)
    with pytest.raises(CivmonError, match="too weak") as error:
        load_pseudonymiser(privacy)
    assert "secrets.token_hex(32)" in error.value.hint and str(privacy.key_file) in error.value.message
    assert "too weak" in key_problem(privacy)
    monkeypatch.setenv(KEY_ENV, key.decode())
    with pytest.raises(CivmonError, match=f"key in {KEY_ENV} is too weak"):
        load_pseudonymiser(privacy)


@pytest.mark.parametrize("key", STRONG_KEYS.values(), ids=STRONG_KEYS)
def test_a_strong_key_pseudonymises(key, tmp_path):
    privacy = PrivacySettings(key_file=tmp_path / "civmon.key")
    privacy.key_file.write_bytes(key)
    privacy.key_file.chmod(0o600)
    assert weak_key_problem(key.strip()) is None and key_problem(privacy) is None
    pseudonym = load_pseudonymiser(privacy).author("reddit", "spez")
    assert pseudonym is not None and len(pseudonym) == 16 and "spez" not in pseudonym


def test_the_key_civmon_init_writes_is_strong_and_private(tmp_path):
    privacy = PrivacySettings(key_file=tmp_path / "civmon.key")
    assert ensure_key_file(privacy)
    assert privacy.key_file.stat().st_mode & 0o777 == 0o600
    assert weak_key_problem(privacy.key_file.read_bytes().strip()) is None


def test_a_key_file_that_is_a_folder_is_a_clear_error(tmp_path):
    (tmp_path / "civmon.key").mkdir()
    (tmp_path / "civmon.toml").write_text('[privacy]\nkey_file = "civmon.key"\n')
    for args in (["init"], ["config", "check"]):
        result = civmon(tmp_path, *args)
        assert result.returncode in (1, 2) and "Traceback" not in result.stderr
        assert "cannot read the pseudonymisation key file" in result.stdout + result.stderr
    with pytest.raises(CivmonError, match="Is a directory"):
        load_pseudonymiser(PrivacySettings(key_file=tmp_path / "civmon.key"))


@pytest.mark.parametrize("kind", ["device", "fifo", "too large"])
def test_a_key_file_that_is_no_small_regular_file_is_refused_without_reading_it_all(tmp_path, kind):
    """/dev/zero never ends and a FIFO waits for a writer: config check ran out of memory or would hang."""
    path = tmp_path / "key"
    if kind == "device":
        path = Path("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_text(secrets.token_hex(4096))
    with pytest.raises(CivmonError, match="not a regular file|larger than 4096 bytes"):
        load_pseudonymiser(PrivacySettings(key_file=path))


def test_config_check_refuses_an_empty_key_file(tmp_path):
    (tmp_path / "civmon.key").write_text("  \n")
    result = civmon(tmp_path, "config", "check")
    assert result.returncode == 1 and "too weak: it is empty" in result.stdout


def test_a_new_sqlite_database_is_private_to_its_owner(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'civmon.db'}")
    schema.upgrade(engine)
    engine.dispose()
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes and set(modes.values()) == {0o600}, modes  # civmon.db, and its -wal/-shm while open


def test_files_others_can_read_are_warned_about(tmp_path, caplog):
    database = tmp_path / "civmon.db"
    sqlite3.connect(database).close()
    database.chmod(0o644)
    (tmp_path / "civmon.key").write_text(secrets.token_hex(32))
    (tmp_path / "civmon.key").chmod(0o644)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):  # `civmon run` opens both for every job: one warning each
            make_engine(f"sqlite:///{database}").dispose()
            load_pseudonymiser(PrivacySettings(key_file=tmp_path / "civmon.key"))
    assert sum("readable by other users" in m for m in caplog.messages) == 2
    result = civmon(tmp_path, "config", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    for path in (database, tmp_path / "civmon.key"):
        assert result.stderr.count(f"{path} is readable by other users of this machine: `chmod 600 {path}`") == 1
    with caplog.at_level(logging.WARNING):
        caplog.clear()
        warn_if_readable_by_others(Path("/tmp"))  # a database URL naming a folder: no advice to chmod it
    assert not caplog.messages


def test_the_key_never_reaches_the_output(tmp_path):
    key = "s3cr3t" * 3
    result = civmon(tmp_path, "init", env={KEY_ENV: key})
    assert result.returncode == 2 and "too weak" in result.stderr
    assert key not in result.stdout + result.stderr
    assert not Path(tmp_path / "civmon.key").exists()


def test_a_key_file_in_a_missing_folder_is_refused_without_making_the_folder(tmp_path):
    (tmp_path / "civmon.toml").write_text('[privacy]\nkey_file = "secrets/civmon.key"\n')
    result = civmon(tmp_path, "init")
    assert result.returncode == 2 and "folder secrets does not exist" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "secrets").exists()
