"""Load recorded Reddit API traffic (vcrpy JSON cassettes) and match requests to it.

A cassette is ``{"recorded_at": ..., "interactions": [{"request": {method, uri,
body, headers}, "response": {status: {code, message}, headers, body: {string}}}]}``.
Every ``*.json`` file in the given directories is loaded; cassettes are ordered
by ``recorded_at`` (then file name) and interactions keep their order inside a
cassette, which defines "recorded order" below.

Matching, for a request (method, path, query, body):

1. Exact: ``(METHOD, path, sorted query pairs, sorted form-body pairs)``. The
   path is percent-decoded; a body that is not ``application/x-www-form-urlencoded``
   is compared as raw text.
2. Lenient, tried only when nothing matches exactly:
   * the path is lower-cased and its trailing ``/`` dropped (Reddit treats
     ``/r/AskReddit/new/`` and ``/r/askreddit/new`` alike);
   * the query keys in ``VOLATILE_QUERY_KEYS`` are ignored: they shape the
     page (``limit``, ``count``), the text encoding (``raw_json``) or add
     decoration (``sr_detail``) but never select different content. ``limit``
     is among them because the recorded pages have a fixed size anyway;
   * form keys in ``VOLATILE_FORM_KEYS`` (``api_type``, which prawcore adds to
     every form) are ignored;
   * ``POST /api/morechildren`` matches on ``link_id`` and the *set* of
     ``children`` only: praw versions order the ids differently and ``sort``
     is already implied by the recorded thread.

The token endpoint ``/api/v1/access_token`` is never indexed: the replay server
answers it itself so any client credentials work.

Several recordings of one request key are served in recorded order, one per
request; once exhausted the last one repeats. Each key (exact or lenient) keeps
its own cursor.

Placeholders: the recorders redacted some values. ``PLACEHOLDERS`` maps the
ones that appear in request URIs or content to concrete values, applied to
request URIs, request bodies and response bodies alike, so that a client asking
for e.g. ``/r/test/comments`` is served and sees ``"subreddit": "test"``.
``<TEST_SUBREDDIT>`` becomes ``test``: the 2023 stream recording's items carry
``subreddit_id`` ``t5_2qh23``, which is r/test (the redaction even turned the
recorder's user agent ``praw_pytest`` into ``praw_py<TEST_SUBREDDIT>``).
``<USERNAME>`` (the recording account) becomes ``praw_test_user``. Secrets
(``<ACCESS_TOKEN>``, ``<PASSWORD>``, ...) only occur in headers and auth
requests, which are not matched, and stay as they are.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

PLACEHOLDERS: Mapping[str, str] = {
    "<TEST_SUBREDDIT>": "test",
    "<USERNAME>": "praw_test_user",
}
VOLATILE_QUERY_KEYS = frozenset({"raw_json", "limit", "count", "sr_detail"})
VOLATILE_FORM_KEYS = frozenset({"api_type"})
TOKEN_PATH = "/api/v1/access_token"
MORECHILDREN_PATH = "/api/morechildren"

# Framing headers are recomputed by the server; the recorded values would lie
# about the replayed body (e.g. gzip, chunked, a stale length).
_FRAMING_HEADERS = frozenset({"connection", "content-encoding", "content-length", "keep-alive", "transfer-encoding"})

Pairs = tuple[tuple[str, str], ...]


def fill_placeholders(text: str) -> str:
    """Replace the recorders' redaction placeholders with concrete values."""
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    return text


def _parse_form(body: str) -> Pairs | None:
    """Sorted pairs of a urlencoded body, or None when the body is not a form."""
    try:
        return tuple(sorted(parse_qsl(body, keep_blank_values=True, strict_parsing=True)))
    except ValueError:
        return None


@dataclass(frozen=True)
class ReplayRequest:
    """A request reduced to what matching looks at."""

    method: str
    path: str
    query: Pairs
    form: Pairs | None
    raw_body: str

    @classmethod
    def parse(cls, method: str, target: str, body: str = "") -> ReplayRequest:
        """Build from a method, a URL or path-with-query, and a decoded body."""
        parts = urlsplit(target)
        query = tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))
        form = _parse_form(body) if body else ()
        return cls(method.upper(), unquote(parts.path) or "/", query, form, body)

    @property
    def normalized_path(self) -> str:
        return self.path.lower().rstrip("/") or "/"

    def exact_key(self) -> Hashable:
        return ("exact", self.method, self.path, self.query, self.form, self._opaque_body())

    def lenient_key(self) -> Hashable:
        if self.method == "POST" and self.normalized_path == MORECHILDREN_PATH and self.form:
            fields = dict(self.form)
            children = frozenset(filter(None, fields.get("children", "").split(",")))
            return ("morechildren", children, fields.get("link_id", ""))
        query = tuple(pair for pair in self.query if pair[0] not in VOLATILE_QUERY_KEYS)
        form = self.form and tuple(p for p in self.form if p[0] not in VOLATILE_FORM_KEYS)
        return ("lenient", self.method, self.normalized_path, query, form, self._opaque_body())

    def _opaque_body(self) -> str:
        # Non-form bodies (JSON, multipart) can only be compared verbatim.
        return self.raw_body if self.form is None else ""


@dataclass(frozen=True)
class RecordedResponse:
    """One recorded answer, ready to be written back."""

    status: int
    reason: str
    headers: Pairs
    body: bytes
    source: str

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


@dataclass
class ReplayQueue:
    """The recordings of one request key, served in recorded order."""

    responses: list[RecordedResponse]
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self) -> RecordedResponse:
        """Return the next recording; the last one repeats once all were served."""
        with self._lock:
            response = self.responses[min(self._next, len(self.responses) - 1)]
            self._next += 1
            return response


@dataclass(frozen=True)
class Interaction:
    request: ReplayRequest
    response: RecordedResponse


def _flatten_headers(headers: Mapping[str, Sequence[str] | str]) -> Pairs:
    pairs: list[tuple[str, str]] = []
    for name, values in headers.items():
        if name.lower() in _FRAMING_HEADERS:
            continue
        for value in [values] if isinstance(values, str) else values:
            pairs.append((name, value))
    return tuple(pairs)


def _body_text(body: object) -> str:
    """vcrpy stores bodies as a string or as ``{"string": ...}``."""
    if isinstance(body, dict):
        body = body.get("string")
    return body if isinstance(body, str) else ""


def _parse_interaction(raw: dict[str, Any], source: str) -> Interaction:
    request, response = raw["request"], raw["response"]
    status = response["status"]
    return Interaction(
        ReplayRequest.parse(
            request["method"],
            fill_placeholders(request["uri"]),
            fill_placeholders(_body_text(request.get("body"))),
        ),
        RecordedResponse(
            status=int(status["code"]),
            reason=str(status.get("message") or ""),
            headers=_flatten_headers(response.get("headers") or {}),
            body=fill_placeholders(_body_text(response.get("body"))).encode("utf-8"),
            source=source,
        ),
    )


@dataclass(frozen=True)
class Cassette:
    name: str
    recorded_at: str
    interactions: tuple[Interaction, ...]

    @classmethod
    def load(cls, path: Path) -> Cassette:
        data = json.loads(path.read_text(encoding="utf-8"))
        interactions = tuple(_parse_interaction(raw, path.stem) for raw in data["interactions"])
        return cls(path.stem, str(data.get("recorded_at", "")), interactions)


def load_cassettes(dirs: Iterable[Path]) -> list[Cassette]:
    """Every cassette in ``dirs``, in recorded order."""
    cassettes = [Cassette.load(path) for d in dirs for path in sorted(Path(d).glob("*.json"))]
    return sorted(cassettes, key=lambda c: (c.recorded_at, c.name))


class CassetteLibrary:
    """Index of recorded interactions by exact and lenient request key."""

    def __init__(self, cassettes: Iterable[Cassette]) -> None:
        self.cassettes = list(cassettes)
        self._queues: dict[Hashable, ReplayQueue] = {}
        for interaction in self.interactions():
            if interaction.request.normalized_path == TOKEN_PATH:
                continue
            for key in (interaction.request.exact_key(), interaction.request.lenient_key()):
                self._queues.setdefault(key, ReplayQueue([])).responses.append(interaction.response)

    @classmethod
    def load(cls, dirs: Iterable[Path]) -> CassetteLibrary:
        return cls(load_cassettes(dirs))

    def interactions(self) -> Iterator[Interaction]:
        for cassette in self.cassettes:
            yield from cassette.interactions

    def cassette(self, name: str) -> Cassette | None:
        return next((c for c in self.cassettes if c.name == name), None)

    def find(self, request: ReplayRequest) -> ReplayQueue | None:
        """The queue that answers ``request``, exact match first; None on a miss."""
        return self._queues.get(request.exact_key()) or self._queues.get(request.lenient_key())
