"""API keys for `civmon serve`: created, listed, revoked, and found by their secret.

A key's secret is shown once, when it is created; the store keeps only its SHA-256. The secrets are
random 256-bit tokens, so a fast hash is the right one: a slow password hash (bcrypt, argon2) defends
guessable secrets against brute force, and nobody can enumerate 2^256 tokens however fast the hash.

A revoked key stays listed, for the audit trail, and keeps its name: names are never reused, so a
name in a log or a quota always means one key. A new key needs a name no key ever had.

A key stores comments (requests with a communityId) only under the communityIds it was created for,
or any with "*": a key handed to one forum's tool cannot fill the monitor with communities, or move
another forum's trends and alerts. Without any, it only scores.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.errors import CivmonError
from monitor.store.models import ApiKey

SECRET_PREFIX = "civmon_"  # tells a civmon key apart in a config file or a secret scanner
NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_QPS = 1e6
ANY = "*"  # a key that may store comments under any communityId
MAX_COMMUNITY_ID = 256  # as the API bounds the communityId it is sent


@dataclass(frozen=True)
class KeyInfo:
    name: str
    qps: float
    created_utc: int
    revoked_utc: int | None
    communities: tuple[str, ...] = ()  # the communityIds it may store comments under; ANY: every one

    def may_store(self, community_id: str) -> bool:
        return ANY in self.communities or community_id in self.communities


def create_key(session: Session, name: str, qps: float, communities: Sequence[str] = ()) -> str:
    """Add a key allowed `qps` requests a second, storing comments only under `communities` (ANY: any); return its
    secret, which nothing can show again."""
    _check_name(name)
    _check_qps(qps)
    _check_communities(communities)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = {
        "name": name,
        "key_hash": _hash(secret),
        "qps": float(qps),
        "created_utc": int(time.time()),
        "communities": json.dumps(sorted(set(communities))),
    }
    try:
        with session.begin_nested():  # a clash rolls back this insert only, not the caller's transaction
            session.execute(insert(ApiKey).values(row))
    except IntegrityError:  # the name (a 256-bit secret's hash never clashes): a check first would race
        raise CivmonError(
            f"an API key named {name!r} already exists (a revoked key keeps its name, for the audit trail)",
            "choose another name; `civmon keys list` shows the names taken",
        ) from None
    return secret


def list_keys(session: Session) -> list[KeyInfo]:
    """Every key, revoked ones too, by name."""
    return [_info(row) for row in session.scalars(select(ApiKey).order_by(ApiKey.name))]


def revoke_key(session: Session, name: str) -> None:
    """Refuse the key from now on; its row stays."""
    row = session.scalars(select(ApiKey).where(ApiKey.name == name)).one_or_none()
    if row is None:
        raise CivmonError(f"there is no API key named {name!r}", "`civmon keys list` shows the keys")
    if row.revoked_utc is not None:
        raise CivmonError(
            f"the API key {name!r} was already revoked, on {_utc(row.revoked_utc)}", "nothing needs doing"
        )
    session.execute(update(ApiKey).where(ApiKey.id == row.id).values(revoked_utc=int(time.time())))


def find_key(session: Session, secret: str) -> KeyInfo | None:
    """The live key whose secret this is; None for an unknown or revoked one.

    The lookup compares hashes, never the secret itself, so its timing tells nothing about the secret."""
    row = session.scalars(select(ApiKey).where(ApiKey.key_hash == _hash(secret))).one_or_none()
    return None if row is None or row.revoked_utc is not None else _info(row)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.name, row.qps, row.created_utc, row.revoked_utc, tuple(json.loads(row.communities)))


def _utc(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


def _check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise CivmonError(
            f"{name!r} cannot name an API key: a name is 1 to 64 characters, letters, digits, '.', '_' or '-'",
            "choose a name like 'moderation-bot' or 'team.research'",
        )


def _check_communities(communities: Sequence[str]) -> None:
    for community in communities:
        if not 0 < len(community) <= MAX_COMMUNITY_ID:
            raise CivmonError(
                f"a community id is 1 to {MAX_COMMUNITY_ID} characters, not {len(community)}",
                "give the communityId your tool sends, or * for any",
            )
        if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in community):  # would reach `keys list`'s terminal
            raise CivmonError(
                "a community id holds control or invisible characters", "give the communityId your tool sends"
            )


def _check_qps(qps: float) -> None:
    if not (math.isfinite(qps) and 0 < qps <= MAX_QPS):
        raise CivmonError(
            f"an API key's rate must be above 0 and at most {MAX_QPS:.0f} requests a second, not {qps:g}",
            "give the requests a second it may make, e.g. 1 (Perspective's default quota) or 0.5",
        )
