"""Per-key rate limits: a key may score `qps` texts a second, in bursts of at most a second's requests.

Two moving windows, on the `limits` library, hold each key. Per second: ceil(qps) requests, the burst.
Per minute: qps × 60 texts (rounded), the rate itself, which the per-second window alone cannot hold for a
fractional qps: a key at 0.5 may make 1 request in a second, but score only 30 texts a minute. A key slower
than one text a minute is counted over an hour, or a day (at least one text a day).

memory:// counts in this process; with several server workers each counts on its own (N workers let
a key make N times its rate). redis://HOST:PORT counts for all of them, and needs the `redis` package.
"""

from __future__ import annotations

import math
import time
from urllib.parse import urlsplit

from limits import (
    RateLimitItem,
    RateLimitItemPerDay,
    RateLimitItemPerHour,
    RateLimitItemPerMinute,
    RateLimitItemPerSecond,
)
from limits.errors import ConfigurationError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from monitor.config import QUOTA_SCHEMES
from monitor.errors import CivmonError

NAMESPACE = "civmon-api"
# The windows that count a key's rate, shortest first: the first in which the key makes one request or more.
RATE_WINDOWS: tuple[tuple[type[RateLimitItem], int], ...] = (
    (RateLimitItemPerMinute, 60),
    (RateLimitItemPerHour, 3600),
    (RateLimitItemPerDay, 86400),
)


class Quotas:
    """Counts each key's requests and texts in `storage_uri` (memory:// or redis://HOST:PORT)."""

    def __init__(self, storage_uri: str = "memory://") -> None:
        scheme = urlsplit(storage_uri).scheme
        if scheme not in QUOTA_SCHEMES:
            raise CivmonError(
                f"civmon cannot count requests in {where(storage_uri)}: not a storage it knows",
                "use memory:// (one server process) or redis://HOST:PORT (shared by several)",
            )
        try:
            storage = storage_from_string(storage_uri, wrap_exceptions=True)  # its errors as StorageError
        except ConfigurationError as exc:  # the storage's Python package is missing
            raise CivmonError(
                f"civmon cannot count requests in {where(storage_uri)}: {exc}",
                "install the package it names, or use memory://",
            ) from None
        except ValueError:  # a port that is not a number (its text would quote the address)
            raise CivmonError(
                f"{where(storage_uri)} is not a storage address", "use memory:// or redis://HOST:PORT"
            ) from None
        if not storage.check():
            raise CivmonError(
                f"civmon cannot reach {where(storage_uri)} to count requests",
                "start the server there, or correct the address",
            )
        self._limiter = MovingWindowRateLimiter(storage)

    def check(self, key_name: str, qps: float, cost: int = 1) -> int | None:
        """Count a request of `cost` texts by `key_name`: None if its quota allows it, else the whole seconds (>= 1)
        to wait, the longer of what its windows ask. The burst window counts requests, the rate's window texts, so
        that a key's quota bounds the model time it takes, whether it sends one text per request or many. A refused
        request counts nowhere. Raises StorageError where the storage (Redis) cannot be reached."""
        windows = list(zip(limits_for(qps), (1, cost), strict=True))
        full = [item for item, amount in windows if not self._limiter.test(item, key_name, cost=amount)]
        if not full and all(self._limiter.hit(item, key_name, cost=amount) for item, amount in windows):
            return None
        waits = [self._limiter.get_window_stats(item, key_name).reset_time - time.time() for item in full]
        return max(1, math.ceil(max(waits, default=1)))


def most_texts(qps: float) -> int:
    """The most texts one request of a key with this rate can carry: what its rate window holds."""
    return limits_for(qps)[1].amount


def limits_for(qps: float) -> tuple[RateLimitItem, RateLimitItem]:
    """The burst window, then the rate's."""
    burst = RateLimitItemPerSecond(math.ceil(qps), namespace=NAMESPACE)
    per, seconds = next(((per, s) for per, s in RATE_WINDOWS if qps * s >= 1), RATE_WINDOWS[-1])
    return burst, per(max(1, round(qps * seconds)), namespace=NAMESPACE)


def where(uri: str) -> str:
    """The storage as it may be printed: no password (before the host, or in the query)."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}" if parts.scheme else uri
