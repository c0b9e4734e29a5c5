"""Who is calling: an API key as Perspective passes it (`?key=`) or as a bearer token, looked up by its hash
in the store, then counted against its quota. Keys never reach a log: the access log names the key."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from limits.errors import StorageError

from monitor.api.errors import ApiError
from monitor.api.quota import most_texts
from monitor.api.service import Service
from monitor.store.db import transaction
from monitor.store.keys import KeyInfo, find_key

log = logging.getLogger(__name__)
query_key = APIKeyQuery(name="key", auto_error=False, description="An API key, as Perspective clients pass it")
bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token")


async def service(request: Request) -> Service:  # async: a plain def would take a thread to read an attribute
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(service)]


async def authenticated(
    request: Request,
    state: ServiceDep,
    key: Annotated[str | None, Depends(query_key)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> KeyInfo | None:
    """The calling key; None when the server runs without auth."""
    if not state.auth:
        return None
    secret = key or (credentials.credentials if credentials else None)
    if not secret:
        raise ApiError(403, "The request is missing a valid API key: pass ?key=KEY or 'Authorization: Bearer KEY'.")
    found = await run_in_threadpool(_find, state, secret)
    if found is None:
        raise ApiError(400, "API key not valid. Please pass a valid API key.")
    request.scope["civmon.key"] = found.name  # for the access log
    return found


async def charge(state: Service, key: KeyInfo | None, texts: int = 1) -> None:
    """Count a request of `texts` texts against the key's quota: a 429 with Retry-After past it."""
    if key is None:
        return
    if texts > (most := most_texts(key.qps)):  # never allowed, however long the caller waits: not a 429
        raise ApiError(
            400,
            f"Quota exceeded for key {key.name!r}: {texts:,} texts in one request, while its quota of {key.qps:g} "
            f"a second allows {most:,} at most. Send fewer texts per request.",
        )
    try:
        wait = await run_in_threadpool(state.quotas.check, key.name, key.qps, texts)  # Redis, perhaps: blocking
    except StorageError:
        log.warning("the quota storage %s cannot be reached: requests with keys get 503", state.quota_where)
        raise ApiError(503, "The quota store cannot be reached. Retry in 5 s.", {"Retry-After": "5"}) from None
    if wait is not None:
        raise ApiError(
            429,
            f"Quota exceeded for key {key.name!r}: {key.qps:g} texts per second. Retry in {wait} s.",
            {"Retry-After": str(wait)},
        )


async def caller(state: ServiceDep, key: Annotated[KeyInfo | None, Depends(authenticated)]) -> KeyInfo | None:
    """The calling key, charged one text: a Perspective request scores one comment."""
    await charge(state, key)
    return key


def _find(state: Service, secret: str) -> KeyInfo | None:
    with transaction(state.reader) as session:
        return find_key(session, secret)
