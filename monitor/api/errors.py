"""Errors in Perspective's shape, `{"error": {"code", "message", "status"}}`, with the HTTP codes and
Google status names a Perspective client already handles; no input reaches a 500 or a traceback."""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from monitor.api.schemas import ErrorResponse
from monitor.api.watched import WatchedSend

log = logging.getLogger(__name__)
# in the OpenAPI document; "4XX" keeps FastAPI from adding a 422 this server never sends (bad input is a 400)
DOCUMENTED = {code: {"model": ErrorResponse} for code in (400, 403, 413, 429, 503, "4XX")}

STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class ApiError(Exception):
    """An answer in Perspective's shape; `headers` such as Retry-After go with it."""

    def __init__(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}


class AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: a lone surrogate a client sent (echoed in clientToken, or in
    an error naming its attribute, language or field) cannot make the response unencodable."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def error_response(code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "status": STATUS.get(code, "UNKNOWN")}}
    return AsciiJSONResponse(body, status_code=code, headers=headers)


def field_path(location: tuple[Any, ...]) -> str:
    """`comment.text` from pydantic's ('body', 'comment', 'text'); list positions as [0]."""
    parts = [str(p) for p in location if p != "body"]
    return "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts).lstrip(".") or "the request body"


def _validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0]
    location = tuple(first.get("loc", ()))
    where = field_path(location)
    if first.get("type") == "json_invalid":
        return "Invalid JSON payload received: the body is not valid JSON."
    if first.get("type") == "string_unicode":  # pydantic blames the object holding a name it cannot read
        return f"Invalid JSON payload received. {where}: a name or a string in it holds a lone surrogate (\\ud800)."
    if location == ("body",):  # not an object: a list, a string, or a form (curl -d sends one unless told)
        return "Invalid JSON payload received: the body must be a JSON object, sent as Content-Type: application/json."
    if first.get("type") == "extra_forbidden":
        return f"Invalid JSON payload received. Unknown name {where!r}: no such field."
    if first.get("type") == "missing":
        return f"Invalid JSON payload received. Required field {where!r} is missing."
    return f"Invalid JSON payload received. {where}: {first.get('msg', 'invalid value')}."


def install(app: FastAPI) -> None:
    """Every error the app can produce, in Perspective's shape."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, _validation_message(exc))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))


class Unexpected:
    """A bug of ours, never the caller's input: a 500 in Perspective's shape, logged by type and place only, since
    an exception's text or a traceback's locals could hold the comment (doNotStore keeps it out of logs too) or the
    key. Starlette's handler for Exception answers too, but then re-raises for uvicorn to log the whole traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watched = WatchedSend(send)
        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f"{frame.filename}:{frame.lineno}" if frame else "?"
            log.error("internal error on %s: %s at %s", scope.get("path", "?"), type(exc).__name__, where)
            if watched.status is None:
                await error_response(500, "Internal error: the server's log says more.")(scope, receive, send)
