"""The ASGI app: Perspective's protocol, civmon's own calls, the discovery document, health and metrics.

`create_app` builds it for one configuration; the model loads in the lifespan, before the server takes a
request. Each process (uvicorn worker) loads its own model once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.concurrency import run_in_threadpool

from monitor.api import discovery, errors, native, perspective
from monitor.api.bodylimit import BodyLimit
from monitor.api.monitoring import RequestRecords, forget_this_process, metrics_body
from monitor.api.service import Service
from monitor.config import Settings


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
            state.close()
            forget_this_process()

    app = FastAPI(
        title="civmon scoring API",
        version="v1alpha1",
        summary="Perspective's comments:analyze, self-hosted, on civmon's open model; and civmon's own batch scoring.",
        lifespan=lifespan,
        default_response_class=errors.AsciiJSONResponse,
        # Perspective took JSON whatever the Content-Type said: scripts post `data=json.dumps(body)` without one
        strict_content_type=False,
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

    app.add_middleware(errors.Unexpected)  # innermost: the access log and the metrics see its 500s
    app.add_middleware(BodyLimit, max_bytes=settings.api.max_request_bytes)
    app.add_middleware(RequestRecords)
    return app
