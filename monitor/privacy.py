"""Pseudonymisation of authors with a keyed hash (HMAC-SHA256).

The key never lives in the database or the TOML: it comes from $CIVMON_PSEUDONYM_KEY
or from a key file that `civmon init` creates (mode 0600). Without the key a
pseudonym cannot be linked back to a user name by hashing guesses; with the same
key the same author always gets the same pseudonym, across runs and exports.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import hmac
import logging
import os
import secrets
import stat
import string
import zlib
from pathlib import Path

from monitor.config import PrivacySettings
from monitor.errors import CivmonError

KEY_ENV = "CIVMON_PSEUDONYM_KEY"
PSEUDONYM_CHARS = 16  # 64 bits: no collisions in practice even across millions of authors
MIN_KEY_BITS = 256  # what `civmon init` writes (32 random bytes); a guessable key makes pseudonyms reversible
MAX_KEY_FILE_BYTES = 4096
MAKE_KEY = 'python3 -c "import secrets; print(secrets.token_hex(32))"'
USER_NAMES = "user names"  # how authors are stored with pseudonymisation off
log = logging.getLogger(__name__)


class Pseudonymiser:
    def __init__(self, key: bytes | None) -> None:
        self._key = key  # None: pseudonymisation switched off by the user

    def author(self, platform: str, name: str | None) -> str | None:
        if name is None or self._key is None:
            return name
        digest = hmac.new(self._key, f"{platform}:{name}".encode(), hashlib.sha256).hexdigest()
        return digest[:PSEUDONYM_CHARS]

    @property
    def keying(self) -> str:
        """How this pseudonymiser stores authors: USER_NAMES, or the key's check value, which tells keys apart
        and reveals nothing of the key (an HMAC of a fixed text, as any pseudonym is of a name)."""
        if self._key is None:
            return USER_NAMES
        return "hmac-sha256:" + hmac.new(self._key, b"civmon key check", hashlib.sha256).hexdigest()[:16]


def load_pseudonymiser(privacy: PrivacySettings) -> Pseudonymiser:
    if not privacy.pseudonymise_authors:
        return Pseudonymiser(None)
    key, source = _read_key(privacy)
    if problem := weak_key_problem(key):
        raise CivmonError(
            f"the pseudonymisation key in {source} is too weak: {problem}",
            f"use at least {MIN_KEY_BITS // 8} random bytes, e.g. `{MAKE_KEY}` (or delete the key file and run "
            "`civmon init`); pseudonyms made with the weak key change",
        )
    if source != KEY_ENV:
        warn_if_readable_by_others(privacy.key_file)
    return Pseudonymiser(key)


def _read_key(privacy: PrivacySettings) -> tuple[bytes, str]:
    """The key's bytes and where they came from (never the key itself)."""
    if (env_key := os.environ.get(KEY_ENV)) is not None:
        return env_key.strip().encode("utf-8", "surrogateescape"), KEY_ENV
    try:
        return _read_small_file(privacy.key_file).strip(), str(privacy.key_file)
    except FileNotFoundError:
        raise CivmonError(
            f"no pseudonymisation key: {KEY_ENV} is not set and {privacy.key_file} does not exist",
            f"run `civmon init` to create the key file, or set {KEY_ENV}; keep the same key for good",
        ) from None
    except OSError as exc:
        raise CivmonError(
            f"cannot read the pseudonymisation key file {privacy.key_file}: {exc.strerror}",
            "[privacy] key_file must name a readable file (`civmon init` creates one)",
        ) from None


def _read_small_file(path: Path) -> bytes:
    """A key file's bytes: a regular file, read up to MAX_KEY_FILE_BYTES (a device would never end)."""
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        content = handle.read(MAX_KEY_FILE_BYTES + 1)
    if len(content) > MAX_KEY_FILE_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_KEY_FILE_BYTES} bytes: is it the key?")
    return content


def weak_key_problem(key: bytes) -> str | None:
    """Why a key cannot keep pseudonyms unlinkable, or None. The estimate is generous to the writer: each
    character counts for the bits of the smallest usual alphabet it fits (hex 4, base64 6, else 8), and a key
    carries no more than it compresses to, so a repeated pattern counts once. It cannot see that a phrase is
    guessable: `civmon init`'s random key is the one to use."""
    if not key:
        return "it is empty"
    text = key.decode("utf-8", "replace")
    bits_per_char = next((bits for bits, alphabet in _ALPHABETS if set(text) <= alphabet), 8)
    # the alphabets are ASCII (a character is a byte); zlib adds 6 bytes of header and checksum
    bits = min(len(key) * bits_per_char, 8 * (len(zlib.compress(key, 9)) - 6))
    if bits < MIN_KEY_BITS:
        return f"about {bits:.0f} bits, fewer than {MIN_KEY_BITS}"
    if len(set(key)) < 8:
        return "it repeats a handful of characters"
    return None


_ALPHABETS = (  # (bits a character carries, the characters): hex in either case, base64 and its URL form
    (4, frozenset(string.hexdigits)),
    (6, frozenset(string.ascii_letters + string.digits + "+/=-_")),
)


def warn_if_readable_by_others(path: Path) -> None:
    """Log a warning when other users of this machine could read a private file (the key, the database)."""
    try:
        mode = path.stat().st_mode
    except OSError:  # not there (yet): nothing to warn about
        return
    # a folder or a device is no private file to chmod (its own error follows); a link's target is what is read
    if stat.S_ISREG(mode) and mode & (stat.S_IRGRP | stat.S_IROTH):
        _warn_once(path.resolve())


@functools.cache  # once a process: `civmon run` opens the key and the database for every job
def _warn_once(path: Path) -> None:
    log.warning("%s is readable by other users of this machine: `chmod 600 %s`", path, path)


def ensure_key_file(privacy: PrivacySettings) -> bool:
    """Create the key file if pseudonymisation needs one; True if it was created now."""
    if not privacy.pseudonymise_authors or os.environ.get(KEY_ENV) is not None or privacy.key_file.exists():
        return False
    if not (folder := privacy.key_file.parent).is_dir():  # a mistyped path: no folder tree made for it
        raise CivmonError(
            f"cannot create the pseudonymisation key {privacy.key_file}: folder {folder} does not exist",
            "create the folder, or set [privacy] key_file to a path in an existing folder",
        )
    fd = os.open(privacy.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(MIN_KEY_BITS // 8) + "\n")
    return True


def key_problem(privacy: PrivacySettings) -> str | None:
    """Why no usable key can be had, or None when one can (or none is needed)."""
    if not privacy.pseudonymise_authors:
        return None
    key_file: Path = privacy.key_file
    if os.environ.get(KEY_ENV) is None and not key_file.exists():
        missing = f"{KEY_ENV} is not set and the key file {key_file} does not exist yet"
        return f"{missing}\n  → run `civmon init`, or set {KEY_ENV}"
    try:
        load_pseudonymiser(privacy)
    except CivmonError as exc:
        return f"{exc.message}\n  → {exc.hint}"
    return None
