"""Prometheus metrics for GET /metrics: requests, latency, model batches, queue depth, texts scored.

Under several uvicorn workers each process counts alone, so the exposition merges them through prometheus_client's
multiprocess mode: every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR and whichever worker answers
GET /metrics reads them all. prometheus_client picks memory or files once, when it is first imported, so the variable
must be in the environment before a worker imports it: the server calls `prepare_multiprocess` in the parent process
before `uvicorn.run(..., workers=N)`; the workers it spawns inherit the variable and import this module afresh. The
parent itself has imported this module already and keeps counting in memory, which is right: it serves no requests.
With one worker (uvicorn serves in the calling process) leave it out: the metrics then live in this process's memory.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from monitor.api.watched import WatchedSend

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
access_log = logging.getLogger("monitor.api.access")
UNMATCHED = "unmatched"  # a path no route serves: one label value, not one per path a client makes up

# Our own registry: the default one adds process and platform collectors, duplicated per worker in multiprocess mode.
REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "civmon_api_requests", "HTTP requests answered, by route and status code", ["endpoint", "code"], registry=REGISTRY
)
LATENCY = Histogram(
    "civmon_api_request_duration_seconds",
    "Time from request to the end of the response, by route",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
BATCH_TEXTS = Histogram(
    "civmon_model_batch_texts",
    "Texts per model call",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
    registry=REGISTRY,
)
# livesum: the texts waiting in all live workers together
QUEUE_TEXTS = Gauge(
    "civmon_model_queue_texts", "Texts waiting for the model", multiprocess_mode="livesum", registry=REGISTRY
)
TEXTS_SCORED = Counter("civmon_texts_scored", "Texts the model has scored", registry=REGISTRY)


def prepare_multiprocess(folder: Path) -> None:
    """Make worker processes started from now on share their metrics through files in `folder`.

    `folder` must be this server's own (e.g. a fresh temporary folder): the values of an earlier run are removed,
    as prometheus_client requires, so they are not added to this run's."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(folder)


def forget_this_process() -> None:
    """At a worker's exit: its live gauges (the queue) leave the sums; its counters stay counted."""
    if MULTIPROC_ENV in os.environ:
        multiprocess.mark_process_dead(os.getpid())


def metrics_body() -> tuple[bytes, str]:
    """The Prometheus text exposition and its content type, merged over all workers in multiprocess mode."""
    if values.ValueClass is values.MutexValue:  # this process's metrics live in its memory
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    merged = CollectorRegistry()  # a fresh one per scrape, as prometheus_client's multiprocess docs do
    MultiProcessCollector(merged, os.environ[MULTIPROC_ENV])
    return generate_latest(merged), CONTENT_TYPE_LATEST


def record_request(endpoint: str, code: int, seconds: float) -> None:
    REQUESTS.labels(endpoint, str(code)).inc()
    LATENCY.labels(endpoint).observe(seconds)


class RequestRecords:
    """ASGI middleware that counts and times every HTTP request under its route template ("/v1/score"), and writes
    its access log line: client, method, path without its query (Perspective clients put the key there), status,
    the key's name and the time taken. Never the raw query, the key, the body or the comment."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watched = WatchedSend(send)
        start = time.perf_counter()
        try:
            await self.app(scope, receive, watched)
        finally:
            seconds = time.perf_counter() - start
            code = watched.status or 500  # no response started: the server error middleware outside answers 500
            record_request(_route_template(scope), code, seconds)
            _log_access(scope, code, seconds)


def _log_access(scope: Scope, code: int, seconds: float) -> None:
    access_log.info(
        '%s "%s %s" %d key=%s %.1f ms',
        (scope.get("client") or ("-", 0))[0],
        scope["method"],
        scope["path"].encode("unicode_escape").decode("ascii"),  # no control characters into the log
        code,
        scope.get("civmon.key", "-"),  # set by monitor.api.auth once the key is known
        1000 * seconds,
    )


def _route_template(scope: Scope) -> str:
    # the router sets scope["route"] on the scope dict it was given, the one we hold
    route = scope.get("route")
    if route is None:  # answered before routing (a body over the limit, refused by a middleware): whose was it?
        routes = getattr(scope.get("app"), "routes", ())
        route = next((r for r in routes if r.matches(scope)[0] is not Match.NONE), None)
    return getattr(route, "path", UNMATCHED)
