"""Errors in Perspective's shape, `{"error": {"code", "message", "status"}}`, with the HTTP codes and
Google status names a Perspective client already handles; no input reaches a 500 or a traceback."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)

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
    def __init__(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "status": STATUS.get(code, "UNKNOWN")}}
    return JSONResponse(body, status_code=code, headers=headers)


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

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # a bug of ours, never the caller's input: logged by type and place only, since an exception's text or a
        # traceback's locals could hold the comment (doNotStore keeps it out of logs too) or the key
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f"{frame.filename}:{frame.lineno}" if frame else "?"
        log.error("internal error on %s: %s at %s", request.scope.get("path", "?"), type(exc).__name__, where)
        return error_response(500, "Internal error: the server's log says more.")
