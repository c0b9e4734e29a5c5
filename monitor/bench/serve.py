"""`civmon serve` under load against `civmon score` on the same real Reddit comments (GoEmotions and incivility
test texts, as `civmon bench score` uses), in one run.

First `civmon score`'s in-process rate: `score_texts` on the default model in batches of `civmon score`'s size.
Then the real server, spawned on loopback with --no-auth and a scratch SQLite store (or one already running, by
--url), gets one Perspective `comments:analyze` request per comment (doNotStore) at each concurrency level, after a
warm-up: requests/s, p50/p99 latency, errors by status, against the issue's goals. The load generator is a thread
per connection over the standard library's http.client (keep-alive, lighter than requests), in this process:
it shares the CPU cores with the server, and its own CPU time is printed beside each level.

    .venv/bin/python -m monitor.bench.serve
"""

from __future__ import annotations

import http.client
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from itertools import cycle, islice
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from monitor.config import ModelSettings
from monitor.errors import CivmonError
from monitor.scoring import datasets
from monitor.scoring.models import load_scorer
from monitor.scoring.pending import BATCH
from monitor.scoring.results import score_texts

LEVELS = (1, 8, 32)
ANALYZE = "/v1alpha1/comments:analyze"
STARTUP_SECONDS = 120
REQUEST_TIMEOUT = 30
MIN_SCORED = 8 * BATCH  # enough batches for a steady in-process rate, however few requests are asked for
# the goals on a 2-core machine
SHARE_GOAL, P99_GOAL, P50_GOAL = 0.70, 1.0, 0.050

Emit = Callable[[str], None]


def reddit_texts() -> list[str]:
    """The comments `civmon bench score` times: GoEmotions then incivility test texts, in file order."""
    return [e.text for task in ("goemotions_hostile", "incivility") for e in datasets.load(task, "test")]


def score_rate(texts: list[str]) -> tuple[float, list[str], str]:
    """`civmon score`'s comments/s on these texts (after one warm-up batch), the texts it scored (the server
    answers the others 400, as it should: quotes only, not English) and the model version."""
    scorer = load_scorer(ModelSettings())
    score_texts(scorer, texts[:BATCH])  # first call: sessions, threads, caches
    start = time.perf_counter()
    results = [r for i in range(0, len(texts), BATCH) for r in score_texts(scorer, texts[i : i + BATCH])]
    rate = len(texts) / (time.perf_counter() - start)
    return rate, [t for t, r in zip(texts, results, strict=True) if r.scores is not None], scorer.version


def server_address(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CivmonError(f"not a server address: {url!r}", "pass --url http://HOST:PORT")
    return parts


class Client:
    """One keep-alive connection per thread to the server; posts one comment, returns its outcome and seconds."""

    def __init__(self, url: str, key: str | None) -> None:
        parts = server_address(url)
        self.connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.host, self.port = parts.hostname, parts.port
        self.path = parts.path.rstrip("/") + ANALYZE
        self.headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
        self.local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        if getattr(self.local, "connection", None) is None:
            self.local.connection = self.connection_type(self.host, self.port, timeout=REQUEST_TIMEOUT)
        return self.local.connection

    def analyze(self, text: str) -> tuple[str, float]:
        body = json.dumps({"comment": {"text": text}, "requestedAttributes": {"TOXICITY": {}}, "doNotStore": True})
        start = time.perf_counter()
        try:
            connection = self._connection()
            connection.request("POST", self.path, body, self.headers)
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.local.connection = None  # a dropped connection: the next request opens a new one
            return type(exc).__name__, time.perf_counter() - start
        elapsed = time.perf_counter() - start
        if response.status != 200:
            return str(response.status), elapsed
        try:
            json.loads(answer)["attributeScores"]["TOXICITY"]["summaryScore"]["value"]
        except (ValueError, KeyError, TypeError):
            return "200 without a TOXICITY score", elapsed
        return "ok", elapsed


@dataclass
class Level:
    concurrency: int
    seconds: float
    answers: list[tuple[str, float]]  # (outcome, seconds) per request
    client_cpu: float  # seconds of this process's CPU time: the load generator's share of the machine

    @property
    def latencies(self) -> list[float]:
        """Of scored requests only: a refusal is fast and would flatter the figures."""
        return [seconds for outcome, seconds in self.answers if outcome == "ok"]

    @property
    def errors(self) -> Counter[str]:
        return Counter(outcome for outcome, _ in self.answers if outcome != "ok")

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: int) -> float:
        latencies = self.latencies
        return statistics.quantiles(latencies, n=100, method="inclusive")[p - 1] if len(latencies) > 1 else math.nan


def run_level(client: Client, texts: list[str], concurrency: int, warmup: list[str]) -> Level:
    """Every text once at this many requests in flight, timed after the warm-up (which also opens the connections)."""
    pool = ThreadPoolExecutor(max_workers=concurrency)
    try:
        list(pool.map(client.analyze, warmup))
        cpu, start = time.process_time(), time.perf_counter()
        answers = list(pool.map(client.analyze, texts))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:  # on Ctrl-C, the requests not yet sent are dropped rather than sent before stopping
        pool.shutdown(cancel_futures=True)
    return Level(concurrency, seconds, answers, cpu)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    parts = urlsplit(url)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CivmonError(f"civmon serve exited with code {server.returncode}:\n{_tail(log)}")
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass  # not listening yet
        finally:
            connection.close()
        time.sleep(0.25)
    raise CivmonError(f"civmon serve did not answer /healthz within {STARTUP_SECONDS} s:\n{_tail(log)}")


def _civmon(*args: str) -> list[str]:
    return [sys.executable, "-m", "monitor", *args]


@contextmanager
def spawned_server() -> Iterator[str]:
    """`civmon serve --no-auth` on a free loopback port, over a scratch SQLite store made by `civmon init`;
    stopped on the way out, however the benchmark ends."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CIVMON_")} | {
        "PYTHONUNBUFFERED": "1"
    }  # the scratch configuration alone, whatever this shell sets
    with tempfile.TemporaryDirectory(prefix="civmon-bench-serve-") as scratch:
        folder = Path(scratch)
        config, log = folder / "civmon.toml", folder / "server.log"
        config.write_text(
            f'[database]\nurl = "sqlite:///{folder / "bench.db"}"\n\n[privacy]\nkey_file = "{folder / "civmon.key"}"\n'
        )
        init = subprocess.run(
            _civmon("init", "--config", str(config)), cwd=folder, env=environment, capture_output=True, text=True
        )
        if init.returncode != 0:
            raise CivmonError(f"civmon init failed for the scratch store:\n{init.stdout}{init.stderr}")
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        command = _civmon("serve", "--config", str(config), "--no-auth", "--host", "127.0.0.1", "--port", str(port))
        with log.open("wb") as output:  # a file, not a pipe: access log lines must never block the server
            server = subprocess.Popen(command, cwd=folder, env=environment, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(url, server, log)
            yield url
            if server.poll() is not None:
                raise CivmonError(f"civmon serve died during the benchmark:\n{_tail(log)}")
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def level_line(level: Level, score_per_second: float) -> str:
    p50, p99, errors, share = level.percentile(50), level.percentile(99), level.errors, level.rate / score_per_second
    line = (
        f"  concurrency {level.concurrency:>3}: {level.rate:>6,.0f} requests/s  p50 {p50 * 1000:>6.1f} ms  "
        f"p99 {p99 * 1000:>7.1f} ms  {share:>4.0%} of civmon score's rate  "
        f"errors {', '.join(f'{o}: {n}' for o, n in errors.items()) or 'none'}  "
        f"(client CPU {level.client_cpu / level.seconds:.0%} of a core)"
    )
    if "429" in errors:
        line += "\n      429: the key's quota or a full queue (benchmark with `civmon keys create NAME --qps 10000`)"
    if level.concurrency == 1:  # a goal is met only with every request scored (nan compares False: no figure)
        line += f"\n      goal p50 <= {P50_GOAL * 1000:.0f} ms: {_mark(not errors and p50 <= P50_GOAL)}"
    if level.concurrency == 32:
        line += (
            f"\n      goal >= {SHARE_GOAL:.0%} of civmon score's rate: {_mark(not errors and share >= SHARE_GOAL)}; "
            f"goal p99 <= {P99_GOAL:.0f} s: {_mark(not errors and p99 <= P99_GOAL)}"
        )
    return line


def bench_serve(
    requests_per_level: int = 600,
    levels: tuple[int, ...] = LEVELS,
    url: str | None = None,
    key: str | None = None,
    emit: Emit = print,
) -> None:
    """Prints `civmon score`'s comments/s, then the server's figures at each concurrency level, as they come."""
    if requests_per_level < 2 or not levels or min(levels) < 1:
        raise CivmonError("nothing to measure", "give --requests >= 2 and concurrency levels >= 1")
    if url is not None:
        server_address(url)  # a wrong address fails before the scoring run, not after
    emit(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start (other work lowers figures)")
    corpus = reddit_texts()
    texts = corpus[: max(requests_per_level * len(levels), MIN_SCORED)]
    rate, scorable, version = score_rate(texts)
    emit(
        f"civmon score in process ({version}, batches of {BATCH}): {rate:,.0f} comments/s over {len(texts):,} real "
        f"Reddit comments ({len(texts) - len(scorable)} unscorable ones left out of the requests)"
    )
    with spawned_server() if url is None else nullcontext(url.rstrip("/")) as address:
        spawned = f" (spawned, --no-auth; the load generator shares its {os.cpu_count()} cores)" if url is None else ""
        emit(
            f"civmon serve at {address}{spawned}: POST {ANALYZE}, TOXICITY, doNotStore, "
            f"{requests_per_level:,} requests per level after a warm-up"
        )
        client = Client(address, key)
        requests = cycle(scorable)
        for concurrency in levels:
            warmup = list(islice(requests, max(4 * concurrency, 32)))
            level = run_level(client, list(islice(requests, requests_per_level)), concurrency, warmup)
            emit(level_line(level, rate))


if __name__ == "__main__":
    bench_serve()
