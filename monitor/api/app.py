"""The ASGI app: Perspective's protocol, civmon's own calls, the discovery document, health and metrics.

`create_app` builds it for one configuration; the model loads in the lifespan, before the server takes a
request. Each process (uvicorn worker) loads its own model once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.api import discovery, errors, native, perspective
from monitor.api.bodylimit import BodyLimit
from monitor.api.monitoring import RequestMetrics, metrics_body
from monitor.api.service import Service
from monitor.config import Settings

access_log = logging.getLogger("monitor.api.access")


class AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: a lone surrogate a client sent (and gets echoed, as
    clientToken is) cannot make the response unencodable."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def create_app(settings: Settings, auth: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await run_in_threadpool(Service.load, settings, auth)
        await state.batcher.start()
        app.state.service = state
        try:
            yield
        finally:
            await state.batcher.stop()

    app = FastAPI(
        title="civmon scoring API",
        version="v1alpha1",
        summary="Perspective's comments:analyze, self-hosted, on civmon's open model; and civmon's own batch scoring.",
        lifespan=lifespan,
        default_response_class=AsciiJSONResponse,
    )
    errors.install(app)
    app.include_router(perspective.router)
    app.include_router(native.router)
    app.include_router(discovery.router)
    if settings.api.public_url:
        public = settings.api.public_url
        app.dependency_overrides[discovery.root_url] = lambda: public

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = metrics_body()
        return Response(body, media_type=content_type)

    app.add_middleware(BodyLimit, max_bytes=settings.api.max_request_bytes)
    app.add_middleware(RequestMetrics)
    app.add_middleware(AccessLog)
    return app


class AccessLog:
    """One line per request: method, path without its query (Perspective clients put the key there), status,
    the key's name and the time taken. Never the key, the body or the comment."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def noted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            client = scope.get("client") or ("-", 0)
            access_log.info(
                '%s "%s %s" %d key=%s %.1f ms',
                client[0],
                scope["method"],
                scope["path"].encode("unicode_escape").decode("ascii"),
                status,
                scope.get("civmon.key", "-"),
                1000 * (time.perf_counter() - start),
            )
