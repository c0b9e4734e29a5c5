"""The collectors' HTTP layer: a stop request ends a retry's wait at once (systemd stops a service after 90 s)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitor.sources.http import RequestBudget, RetryPolicy, polite_session
from monitor.stopping import STOP


@pytest.fixture
def rate_limited() -> Iterator[tuple[str, list[float]]]:
    """A server that answers every request 429, asking for 100 s of patience."""
    arrivals: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            arrivals.append(time.monotonic())
            self.send_response(429)
            self.send_header("Retry-After", "100")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/r/x/new.json", arrivals
    finally:
        server.shutdown()
        server.server_close()
        STOP.clear()


def test_a_stop_request_ends_a_retry_wait_at_once(rate_limited):
    url, arrivals = rate_limited
    session = polite_session(RequestBudget(50), RetryPolicy(attempts=5, wait_seconds=1, timeout_seconds=5), "test")
    threading.Timer(0.5, STOP.set).start()
    started = time.monotonic()
    response = session.get(url)
    assert time.monotonic() - started < 10  # not the 100 s Retry-After asked for, let alone five of them
    assert response.status_code == 429 and len(arrivals) <= 2  # no retry after the stop
