"""Who is calling: an API key as Perspective passes it (`?key=`) or as a bearer token, looked up by its hash
in the store, then counted against its quota. Keys never reach a log: the access log names the key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from monitor.api.errors import ApiError
from monitor.api.service import Service
from monitor.store.db import transaction
from monitor.store.keys import KeyInfo, find_key

query_key = APIKeyQuery(name="key", auto_error=False, description="An API key, as Perspective clients pass it")
bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token")


def service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(service)]


async def caller(
    request: Request,
    key: Annotated[str | None, Depends(query_key)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> KeyInfo | None:
    """The calling key once its quota allows the request; None when the server runs without auth."""
    state = service(request)
    if not state.auth:
        return None
    secret = key or (credentials.credentials if credentials else None)
    if not secret:
        raise ApiError(403, "The request is missing a valid API key: pass ?key=KEY or 'Authorization: Bearer KEY'.")
    found, wait = await run_in_threadpool(_find_and_count, state, secret)  # a database, perhaps Redis: blocking
    if found is None:
        raise ApiError(400, "API key not valid. Please pass a valid API key.")
    request.scope["civmon.key"] = found.name  # for the access log
    if wait is not None:
        raise ApiError(
            429,
            f"Quota exceeded for key {found.name!r}: {found.qps:g} requests per second. Retry in {wait} s.",
            {"Retry-After": str(wait)},
        )
    return found


def _find_and_count(state: Service, secret: str) -> tuple[KeyInfo | None, int | None]:
    """The key with that secret, and the seconds it must wait if its quota refuses this request."""
    with transaction(state.reader) as session:
        found = find_key(session, secret)
    return found, found and state.quotas.check(found.name, found.qps)
