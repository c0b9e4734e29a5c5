"""A hand-made Hacker News API on loopback (no recording of HN exists): a small tree with
deleted and dead comments, HTML text, a 503 on the first request for one item and a cut-off JSON answer (status
200) on the first request for another."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

T = 1_760_000_000
ITEMS: dict[int, dict[str, Any]] = {
    100: {
        "id": 100,
        "type": "story",
        "by": "alice",
        "time": T,
        "title": "Show HN: a civility monitor",
        "url": "https://example.org",
        "score": 42,
        "descendants": 5,
        "kids": [101, 102, 103],
    },
    101: {
        "id": 101,
        "type": "comment",
        "by": "bob",
        "time": T + 60,
        "parent": 100,
        "kids": [104],
        "text": "Nice work.<p>Does it handle <i>sarcasm</i>? It&#x27;s hard.",
    },
    102: {"id": 102, "type": "comment", "deleted": True, "time": T + 70, "parent": 100},
    103: {"id": 103, "type": "comment", "by": "troll", "dead": True, "time": T + 80, "parent": 100, "text": "flagged"},
    104: {
        "id": 104,
        "type": "comment",
        "by": "alice",
        "time": T + 90,
        "parent": 101,
        "kids": [105],
        "text": 'Not yet: see <a href="https://example.org/x">the notes</a>.',
    },
    105: {"id": 105, "type": "comment", "by": "carol", "time": T + 100, "parent": 104, "text": "Thanks!"},
    200: {"id": 200, "type": "story", "by": "dave", "time": T + 5, "title": "Ask HN: quiet story", "score": 3},
}
FEEDS = {"topstories": [100, 200, 999]}  # 999: an item the API returns as null
FLAKY = {"/v0/item/104.json"}  # answers 503 once
CUT_OFF = {"/v0/item/105.json"}  # answers 200 with half its JSON once


class HackerNewsFixture:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        fixture = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fixture.requests[self.path] += 1
                if self.path in FLAKY and fixture.requests[self.path] == 1:
                    return self._send(503, {"error": "try again"})
                data = json.dumps(fixture.answer(self.path)).encode()
                if self.path in CUT_OFF and fixture.requests[self.path] == 1:
                    data = data[: len(data) // 2]
                self._send(200, data)

            def _send(self, status: int, body: Any) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v0"

    @staticmethod
    def answer(path: str) -> Any:
        name = path.removeprefix("/v0/").removesuffix(".json")
        if name in FEEDS:
            return FEEDS[name]
        if name.startswith("item/"):
            return ITEMS.get(int(name.split("/")[1]))
        return None

    def __enter__(self) -> HackerNewsFixture:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
