"""A local HTTP server that answers Reddit API requests from recorded cassettes.

Point praw at it with ``oauth_url=server.url`` and ``reddit_url=server.url``:

* ``POST /api/v1/access_token`` is answered here, not from recordings: any
  client id gets a fresh read-only bearer token (grant types
  ``client_credentials`` and ``installed_client``), except ``bad_client_id``,
  which gets Reddit's 401; other grant types (password, refresh token) get
  Reddit's ``{"error": "unsupported_grant_type"}``. API requests must carry a
  token issued here, otherwise they get a 401 (prawcore then re-authorizes).
* Every other request is matched against the cassettes (see
  :mod:`monitor.replay.cassettes`). A request without a recording is a *miss*:
  it is recorded in :attr:`ReplayServer.misses` and answered 404 with
  Reddit's JSON error body.
* Responses keep their recorded headers. Recordings without Reddit's
  ``x-ratelimit-*`` headers get synthesized ones whose values keep prawcore's
  pacing delay at zero, so replay runs at full speed.

A :class:`FaultPlan` makes the server misbehave the way Reddit does, before
serving a *matched* request (token requests and misses are never faulted). A
fault does not advance the replay cursor, so a retry gets the recorded answer.
Fault responses reuse the status, headers and body recorded by prawcore's own
tests (``TestSession.test_request__*``) when those cassettes are among the
loaded directories, and minimal equivalents otherwise.
"""

from __future__ import annotations

import base64
import json
import random
import socket
import struct
import sys
import threading
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from monitor.replay.cassettes import (
    TOKEN_PATH,
    CassetteLibrary,
    Pairs,
    RecordedResponse,
    ReplayRequest,
)

FAULT_KINDS: tuple[str, ...] = (
    "429", "429-bare", "500", "502", "503", "504", "520", "522", "reset", "timeout", "bad-json",
)  # fmt: skip
BAD_CLIENT_ID = "bad-client-id"
READ_ONLY_GRANTS = frozenset({"client_credentials", "https://oauth.reddit.com/grants/installed_client"})

# kind -> (prawcore cassette holding the real response, its status code)
_FAULT_RECORDINGS: Mapping[str, tuple[str, int]] = {
    "429": ("TestSession.test_request__too__many_requests__with_retry_headers", 429),
    "429-bare": ("TestSession.test_request__too__many_requests__without_retry_headers", 429),
    "500": ("TestSession.test_request__internal_server_error", 500),
    "502": ("TestSession.test_request__bad_gateway", 502),
    "503": ("TestSession.test_request__service_unavailable", 503),
    "504": ("TestSession.test_request__gateway_timeout", 504),
    "520": ("TestSession.test_request__cloudflare_unknown_error", 520),
    "522": ("TestSession.test_request__cloudflare_connection_timed_out", 522),
    "bad-json": ("TestSession.test_request__bad_json", 200),
}
_JSON = (("Content-Type", "application/json; charset=UTF-8"),)
_FALLBACK_BODIES: Mapping[str, bytes] = {
    "429": b'{"message": "Too Many Requests", "error": 429}',
    "429-bare": b'{"message": "Too Many Requests", "error": 429}',
    "bad-json": b'{"kind": "Listing", "data": {"modhash": null, "children": [], "after": null',
}
# Reddit's budget is 1000 requests per 600 s window. The synthesized reset is
# chosen so prawcore's pacing formula (reset - window * remaining / budget)
# never asks the client to wait.
_RATE_BUDGET = 1000
_RATE_WINDOW_S = 600
# How much longer than the client's timeout a "timeout" fault holds a request.
_TIMEOUT_MARGIN_S = 0.5


@dataclass(frozen=True)
class FaultPlan:
    """Which faults to inject, how often, reproducibly for a seed.

    Kinds: "429" (recorded body; ``retry-after`` and ``x-ratelimit-*`` saying
    the budget is spent), "429-bare" (no such headers), "500", "502", "503",
    "504", "520", "522" (recorded Reddit/Cloudflare answers), "reset" (TCP RST,
    no response), "timeout" (no response until the client gave up), "bad-json"
    (200 with a truncated JSON body).

    ``client_timeout``: the timeout the client uses; a "timeout" fault holds the
    request ``client_timeout + 0.5`` s and then closes the connection unanswered.
    ``retry_after``: seconds a "429" announces (``retry-after`` and
    ``x-ratelimit-reset``); prawcore waits at least 1 s after any 429 that says
    ``x-ratelimit-remaining: 0``.
    """

    seed: int
    rate: float
    kinds: tuple[str, ...] = FAULT_KINDS
    client_timeout: float = 2.0
    retry_after: int = 1

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be a non-empty subset of {FAULT_KINDS}: {self.kinds}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must lie in [0, 1]: {self.rate}")

    def pick(self, key: Hashable, attempt: int) -> str | None:
        """The fault for the ``attempt``-th arrival of request ``key``, or None.

        Seeding per (seed, key, attempt) rather than drawing from one stream
        keeps the outcome independent of how concurrent requests interleave.
        """
        rng = random.Random(f"{self.seed}|{key!r}|{attempt}")
        return rng.choice(self.kinds) if rng.random() < self.rate else None

    @property
    def hold_seconds(self) -> float:
        return self.client_timeout + _TIMEOUT_MARGIN_S


@dataclass
class _Stats:
    total: int = 0
    served: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    misses: list[ReplayRequest] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    attempts: Counter[Hashable] = field(default_factory=Counter)


def _error_body(status: int, message: str) -> bytes:
    return json.dumps({"message": message, "error": status}).encode()


def _with_headers(response: RecordedResponse, overrides: Mapping[str, str]) -> RecordedResponse:
    lowered = {name.lower() for name in overrides}
    kept = tuple((k, v) for k, v in response.headers if k.lower() not in lowered)
    return replace(response, headers=kept + tuple(overrides.items()))


def _fault_response(library: CassetteLibrary, kind: str, plan: FaultPlan) -> RecordedResponse:
    name, status = _FAULT_RECORDINGS[kind]
    cassette = library.cassette(name)
    recorded = [i.response for i in cassette.interactions if i.response.status == status] if cassette else []
    if recorded:
        response = recorded[-1]  # the last one: the token exchange before it may share the status
    else:
        body = _FALLBACK_BODIES.get(kind, b"")
        response = RecordedResponse(status, "Fault", _JSON, body, source="synthetic")
    if kind == "429":
        reset = str(plan.retry_after)
        response = _with_headers(
            response,
            {
                "retry-after": reset,
                "x-ratelimit-remaining": "0.0",
                "x-ratelimit-used": str(_RATE_BUDGET),
                "x-ratelimit-reset": reset,
            },
        )
    return response


def _ratelimit_headers(served: int) -> Pairs:
    used = (served - 1) % (_RATE_BUDGET - 1) + 1  # remaining never reaches 0
    remaining = _RATE_BUDGET - used
    reset = _RATE_WINDOW_S * remaining // _RATE_BUDGET
    return (
        ("x-ratelimit-remaining", f"{remaining}.0"),
        ("x-ratelimit-used", str(used)),
        ("x-ratelimit-reset", str(reset)),
    )


def _client_id(handler: BaseHTTPRequestHandler) -> str:
    scheme, _, credentials = (handler.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(credentials).decode().partition(":")[0]
    except ValueError:
        return ""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], replay: ReplayServer) -> None:
        self.replay = replay
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (killed, timed out) is routine here, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as with Reddit
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Without this, Nagle's algorithm holds the body back until the client
        # ACKs the headers, costing a delayed-ACK (~40 ms) per request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self.server.replay._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Silence per-request logging; the server keeps counts instead."""


class ReplayServer:
    """Serve recorded Reddit traffic on 127.0.0.1 from a background thread."""

    def __init__(
        self,
        cassette_dirs: Sequence[Path],
        faults: FaultPlan | None = None,
        *,
        bad_client_id: str = BAD_CLIENT_ID,
        port: int = 0,
    ) -> None:
        self.library = CassetteLibrary.load(cassette_dirs)
        self.faults = faults
        self.bad_client_id = bad_client_id
        self._fault_responses = {
            kind: _fault_response(self.library, kind, faults)
            for kind in (faults.kinds if faults else ())
            if kind in _FAULT_RECORDINGS
        }
        self._port = port
        self._stats = _Stats()
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------

    def start(self) -> ReplayServer:
        self._httpd = _HTTPServer(("127.0.0.1", self._port), self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases requests held by "timeout" faults
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("ReplayServer is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- counters (copies, safe to keep) ---------------------------------

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._stats.total

    @property
    def requests_by_path(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats.by_path)

    @property
    def misses(self) -> list[ReplayRequest]:
        with self._lock:
            return list(self._stats.misses)

    @property
    def faults_injected(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats.faults)

    # -- request handling --------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode("utf-8", "replace") if length else ""
        request = ReplayRequest.parse(handler.command, handler.path, body)
        with self._lock:
            self._stats.total += 1
            self._stats.by_path[request.path] += 1
        if request.method == "POST" and request.normalized_path == TOKEN_PATH:
            self._answer_token(handler, request)
        elif not self._authorized(handler):
            self._send_error(handler, 401, "Unauthorized", {"www-authenticate": 'Bearer realm="reddit"'})
        else:
            self._replay(handler, request)

    def _replay(self, handler: _Handler, request: ReplayRequest) -> None:
        queue = self.library.find(request)
        if queue is None:
            with self._lock:
                self._stats.misses.append(request)
            self._send_error(handler, 404, "Not Found")
            return
        fault = self._pick_fault(request)
        if fault is not None:
            self._inject(handler, fault)
            return
        response = queue.take()
        with self._lock:
            self._stats.served += 1
            served = self._stats.served
        extra = () if response.header("x-ratelimit-remaining") else _ratelimit_headers(served)
        self._send(handler, response, extra)

    def _pick_fault(self, request: ReplayRequest) -> str | None:
        if self.faults is None:
            return None
        key = request.exact_key()
        with self._lock:
            self._stats.attempts[key] += 1
            attempt = self._stats.attempts[key]
        fault = self.faults.pick(key, attempt)
        if fault is not None:
            with self._lock:
                self._stats.faults[fault] += 1
        return fault

    def _inject(self, handler: _Handler, fault: str) -> None:
        assert self.faults is not None
        if fault == "reset":
            self._reset_connection(handler)
        elif fault == "timeout":
            self._stopping.wait(self.faults.hold_seconds)
            handler.close_connection = True
        else:
            self._send(handler, self._fault_responses[fault])

    @staticmethod
    def _reset_connection(handler: _Handler) -> None:
        # SO_LINGER with a zero timeout turns close() into a TCP RST.
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
        handler.close_connection = True

    def _authorized(self, handler: _Handler) -> bool:
        scheme, _, token = (handler.headers.get("Authorization") or "").partition(" ")
        with self._lock:
            return scheme.lower() == "bearer" and token in self._tokens

    def _answer_token(self, handler: _Handler, request: ReplayRequest) -> None:
        if _client_id(handler) == self.bad_client_id:
            self._send_error(handler, 401, "Unauthorized", {"www-authenticate": 'Basic realm="reddit"'})
            return
        grant = dict(request.form or ()).get("grant_type", "")
        if grant not in READ_ONLY_GRANTS:
            payload: dict[str, object] = {"error": "unsupported_grant_type"}
        else:
            with self._lock:
                token = f"replay-token-{len(self._tokens) + 1}"
                self._tokens.add(token)
            payload = {"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"}
        self._send(handler, RecordedResponse(200, "OK", _JSON, json.dumps(payload).encode(), "synthetic"))

    def _send_error(
        self, handler: _Handler, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        response = RecordedResponse(status, message, _JSON, _error_body(status, message), "synthetic")
        self._send(handler, _with_headers(response, headers or {}))

    @staticmethod
    def _send(handler: _Handler, response: RecordedResponse, extra: Pairs = ()) -> None:
        handler.send_response_only(response.status, response.reason)
        for name, value in response.headers + extra:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(response.body)))
        if handler.close_connection:
            # Echo the client's "Connection: close" (prawcore sends it for token
            # requests); otherwise the client pools a socket we are closing.
            handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(response.body)
