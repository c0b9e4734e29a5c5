"""Pseudonymisation of authors with a keyed hash (HMAC-SHA256).

The key never lives in the database or the TOML: it comes from $CIVMON_PSEUDONYM_KEY
or from a key file that `civmon init` creates (mode 0600). Without the key a
pseudonym cannot be linked back to a user name by hashing guesses; with the same
key the same author always gets the same pseudonym, across runs and exports.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from monitor.config import PrivacySettings
from monitor.errors import CivmonError

KEY_ENV = "CIVMON_PSEUDONYM_KEY"
PSEUDONYM_CHARS = 16  # 64 bits: no collisions in practice even across millions of authors


class Pseudonymiser:
    def __init__(self, key: bytes | None) -> None:
        self._key = key  # None: pseudonymisation switched off by the user

    def author(self, platform: str, name: str | None) -> str | None:
        if name is None or self._key is None:
            return name
        digest = hmac.new(self._key, f"{platform}:{name}".encode(), hashlib.sha256).hexdigest()
        return digest[:PSEUDONYM_CHARS]


def load_pseudonymiser(privacy: PrivacySettings) -> Pseudonymiser:
    if not privacy.pseudonymise_authors:
        return Pseudonymiser(None)
    if env_key := os.environ.get(KEY_ENV):
        return Pseudonymiser(env_key.encode())
    try:
        return Pseudonymiser(privacy.key_file.read_bytes().strip())
    except FileNotFoundError:
        raise CivmonError(
            f"no pseudonymisation key: {KEY_ENV} is not set and {privacy.key_file} does not exist",
            f"run `civmon init` to create the key file, or set {KEY_ENV}; keep the same key for good",
        ) from None


def ensure_key_file(privacy: PrivacySettings) -> bool:
    """Create the key file if pseudonymisation needs one; True if it was created now."""
    if not privacy.pseudonymise_authors or os.environ.get(KEY_ENV) or privacy.key_file.exists():
        return False
    privacy.key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(privacy.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return True


def key_problem(privacy: PrivacySettings) -> str | None:
    """Why no key can be had, or None when one can (or none is needed)."""
    if not privacy.pseudonymise_authors or os.environ.get(KEY_ENV):
        return None
    key_file: Path = privacy.key_file
    if not key_file.exists():
        return f"{KEY_ENV} is not set and the key file {key_file} does not exist yet (`civmon init` creates it)"
    return None
