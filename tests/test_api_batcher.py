"""The micro-batcher in front of the real model, and the Prometheus metrics it and the HTTP layer record."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp, Receive, Scope, Send

from monitor.api.batcher import Batcher, Overloaded, Stopped
from monitor.api.monitoring import MULTIPROC_ENV, RequestRecords, metrics_body
from monitor.config import ModelSettings
from monitor.scoring import datasets
from monitor.scoring.models import default_scorer
from monitor.scoring.results import Result, score_texts

from conftest import PROJECT

WAIT = 30  # seconds: anything slower than this is a hang


@pytest.fixture(scope="module")
def scorer():
    return default_scorer(ModelSettings())


@pytest.fixture(scope="module")
def comments() -> list[str]:
    """Distinct real Reddit comments of the length most API requests carry (a few sentences)."""
    if datasets.missing_files(tasks=["incivility"]):
        pytest.skip(f"the Reddit incivility comments are not in {datasets.data_dir()}")
    texts = dict.fromkeys(e.text for e in datasets.load("incivility", "test") if len(e.text) <= 400)
    return list(texts)[:200]


class Recorder:
    """score_texts on the real model, noting each call's texts; a call waits for `gate` and fails on `poison`."""

    def __init__(self, scorer, poison: str | None = None) -> None:
        self.scorer = scorer
        self.poison = poison
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, texts: list[str]) -> list[Result]:
        self.batches.append(list(texts))
        self.entered.set()
        self.gate.wait(WAIT)
        if self.poison in texts:
            raise ValueError("the model choked")
        return score_texts(self.scorer, texts)

    def hold(self) -> None:
        """The next call waits in the model thread until `gate.set()`."""
        self.gate.clear()
        self.entered.clear()

    async def busy(self) -> None:
        """Until a call has entered the model."""
        assert await asyncio.to_thread(self.entered.wait, WAIT)


@asynccontextmanager
async def running(
    score, max_batch: int = 256, window_s: float = 0.005, max_queue: int = 4096
) -> AsyncIterator[Batcher]:
    batcher = Batcher(score, max_batch=max_batch, window_s=window_s, max_queue=max_queue)
    await batcher.start()
    try:
        yield batcher
    finally:
        await batcher.stop()


def together(texts: list[str], batch: list[str]) -> bool:
    return any(batch[i : i + len(texts)] == texts for i in range(len(batch)))


def test_concurrent_requests_share_calls_and_get_their_own_results(scorer, comments):
    recorder = Recorder(scorer)
    requests = [comments[3 * i : 3 * i + 1 + i % 3] for i in range(50)]  # 1 to 3 texts each

    async def main() -> list[list[Result]]:
        async with running(recorder, max_batch=16) as batcher:

            async def client(i: int, texts: list[str]) -> list[Result]:
                await asyncio.sleep(i * 0.004)  # arrivals spread over 0.2 s: many come while the model works
                return await batcher.score(texts)

            return await asyncio.wait_for(asyncio.gather(*(client(i, t) for i, t in enumerate(requests))), WAIT)

    answers = asyncio.run(main())
    assert 1 < len(recorder.batches) < len(requests)
    assert all(len(batch) <= 16 for batch in recorder.batches)
    assert sorted(t for b in recorder.batches for t in b) == sorted(t for r in requests for t in r)  # each once
    assert all(any(together(texts, batch) for batch in recorder.batches) for texts in requests)
    # exactly what score_texts gives for the texts of each call, handed to the right request in its order
    replay = {t: r for batch in recorder.batches for t, r in zip(batch, score_texts(scorer, batch), strict=True)}
    assert answers == [[replay[t] for t in texts] for texts in requests]
    assert sum(r.scores is not None for a in answers for r in a) > 50


def test_an_idle_model_waits_the_window_for_company_but_not_for_a_full_batch(scorer, comments):
    recorder = Recorder(scorer)

    async def main() -> float:
        async with running(recorder, max_batch=3, window_s=0.2) as batcher:

            async def later() -> list[Result]:
                await asyncio.sleep(0.02)
                return await batcher.score([comments[1]])

            await asyncio.wait_for(asyncio.gather(batcher.score([comments[0]]), later()), WAIT)
        async with running(recorder, max_batch=3, window_s=WAIT) as batcher:
            started = time.monotonic()
            await asyncio.wait_for(asyncio.gather(batcher.score(comments[2:4]), batcher.score([comments[4]])), WAIT)
            return time.monotonic() - started

    full_batch_seconds = asyncio.run(main())
    assert recorder.batches == [comments[0:2], comments[2:5]]
    assert full_batch_seconds < WAIT / 2  # three texts fill the batch: no waiting out the window


def test_a_request_bigger_than_a_batch_is_scored_whole_and_alone(scorer, comments):
    recorder = Recorder(scorer)
    big, small = comments[:6], comments[6:7]

    async def main() -> list[list[Result]]:
        async with running(recorder, max_batch=4) as batcher:
            return await asyncio.wait_for(asyncio.gather(batcher.score(big), batcher.score(small)), WAIT)

    answers = asyncio.run(main())
    assert recorder.batches == [big, small]
    assert answers == [score_texts(scorer, big), score_texts(scorer, small)]


def test_a_full_queue_refuses_at_once_with_retry_after_from_the_throughput(scorer, comments):
    recorder = Recorder(scorer)
    hundred = comments[:100]

    async def main() -> Overloaded:
        async with running(recorder, max_batch=64, window_s=0.001, max_queue=300) as batcher:
            recorder.hold()
            warm = asyncio.create_task(batcher.score(comments[:8]))
            await asyncio.sleep(0.5)  # a call of 8 texts lasting >= 0.5 s: at most 16 texts/s measured
            recorder.gate.set()
            await asyncio.wait_for(warm, WAIT)
            recorder.hold()
            first = asyncio.create_task(batcher.score(comments[8:9]))
            await recorder.busy()
            queued = [asyncio.create_task(batcher.score(hundred)) for _ in range(3)]  # 300 texts: full, not over
            await asyncio.sleep(0.01)
            assert not any(task.done() for task in queued)
            started = time.monotonic()
            with pytest.raises(Overloaded) as refused:
                await batcher.score(comments[9:10])
            assert time.monotonic() - started < 0.1
            for task in queued:  # their clients go away before the model reaches them
                task.cancel()
            await asyncio.gather(*queued, return_exceptions=True)
            assert sample("civmon_model_queue_texts") == 0
            recorder.gate.set()
            assert len(await asyncio.wait_for(first, WAIT)) == 1
            assert len(await asyncio.wait_for(batcher.score(comments[9:10]), WAIT)) == 1
            return refused.value

    refused = asyncio.run(main())
    assert isinstance(refused.retry_after_s, int) and refused.retry_after_s >= 301 / 16
    assert "retry in" in str(refused)
    assert recorder.batches == [comments[:8], comments[8:9], comments[9:10]]  # the withdrawn ones never scored


def test_a_failing_call_fails_only_its_batch(scorer, comments):
    recorder = Recorder(scorer, poison="POISON")

    async def main() -> None:
        async with running(recorder) as batcher:
            recorder.hold()
            bad = asyncio.create_task(batcher.score(["POISON", comments[0]]))
            await recorder.busy()
            others = [
                asyncio.create_task(batcher.score(comments[1:3])),
                asyncio.create_task(batcher.score([comments[3]])),
            ]
            await asyncio.sleep(0.01)
            recorder.gate.set()
            with pytest.raises(ValueError, match="choked"):
                await asyncio.wait_for(bad, WAIT)
            answers = await asyncio.wait_for(asyncio.gather(*others), WAIT)
            assert answers == [score_texts(scorer, comments[1:4])[:2], score_texts(scorer, comments[1:4])[2:]]
            assert await batcher.score([comments[4]]) == score_texts(scorer, [comments[4]])  # the loop lives on

    asyncio.run(main())
    assert recorder.batches == [["POISON", comments[0]], comments[1:4], [comments[4]]]


def test_a_client_gone_during_its_call_breaks_nothing(scorer, comments):
    recorder = Recorder(scorer)

    async def main() -> None:
        async with running(recorder) as batcher:
            recorder.hold()
            gone = asyncio.create_task(batcher.score(comments[:2]))
            await recorder.busy()
            waiting = asyncio.create_task(batcher.score([comments[2]]))
            await asyncio.sleep(0.01)
            gone.cancel()
            recorder.gate.set()
            assert await asyncio.wait_for(waiting, WAIT) == score_texts(scorer, [comments[2]])
            assert gone.cancelled()

    asyncio.run(main())
    assert recorder.batches == [comments[:2], [comments[2]]]


def test_stop_releases_every_waiter(scorer, comments):
    recorder = Recorder(scorer)

    async def main() -> None:
        batcher = Batcher(recorder, max_batch=256, window_s=0.005, max_queue=4096)
        with pytest.raises(Stopped):
            await batcher.score([comments[0]])  # not started: refused, not left waiting
        await batcher.start()
        recorder.hold()
        in_call = asyncio.create_task(batcher.score([comments[0]]))
        await recorder.busy()
        queued = asyncio.create_task(batcher.score([comments[1]]))
        await asyncio.sleep(0.01)
        await asyncio.wait_for(batcher.stop(), 5)
        for task in (in_call, queued):
            with pytest.raises(Stopped):
                await asyncio.wait_for(task, 5)
        with pytest.raises(Stopped):
            await batcher.score([comments[2]])
        recorder.gate.set()  # the abandoned call's thread finishes; nobody reads it

    asyncio.run(main())


def sample(name: str, **labels: str) -> float:
    body, content_type = metrics_body()
    assert content_type.startswith("text/plain")
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def test_batch_queue_and_scored_metrics(scorer, comments):
    recorder = Recorder(scorer)
    calls, texts, scored = (
        sample("civmon_model_batch_texts_count"),
        sample("civmon_model_batch_texts_sum"),
        sample("civmon_texts_scored_total"),
    )

    async def main() -> None:
        async with running(recorder) as batcher:
            assert await batcher.score([]) == []  # no model call for nothing
            recorder.hold()
            first = asyncio.create_task(batcher.score(comments[:1]))
            await recorder.busy()
            queued = [
                asyncio.create_task(batcher.score(comments[1:3])),
                asyncio.create_task(batcher.score([comments[3]])),
            ]
            await asyncio.sleep(0.01)
            assert sample("civmon_model_queue_texts") == 3
            recorder.gate.set()
            await asyncio.wait_for(asyncio.gather(first, *queued), WAIT)
            assert sample("civmon_model_queue_texts") == 0

    asyncio.run(main())
    assert sample("civmon_model_batch_texts_count") == calls + 2
    assert sample("civmon_model_batch_texts_sum") == texts + 4
    assert sample("civmon_model_batch_texts_bucket", le="1.0") >= 1
    assert sample("civmon_texts_scored_total") == scored + 4


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """`app` served by uvicorn on a loopback port, in a thread."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(WAIT)


def status(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=WAIT) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


class RefuseLarge:
    """Answers 413 before routing, as a body limit does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"x-size") == b"large":
            await send({"type": "http.response.start", "status": 413, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


def test_requests_counted_by_route_template_never_by_path_or_query():
    app = FastAPI()
    app.add_middleware(RefuseLarge)
    app.add_middleware(RequestRecords)

    @app.get("/things/{name}")
    def thing(name: str) -> dict[str, str]:
        return {"name": name}

    route = {"endpoint": "/things/{name}"}
    ok, refused, missing, timed = (
        sample("civmon_api_requests_total", **route, code="200"),
        sample("civmon_api_requests_total", **route, code="413"),
        sample("civmon_api_requests_total", endpoint="unmatched", code="404"),
        sample("civmon_api_request_duration_seconds_count", **route),
    )
    with serving(app) as base:
        assert status(f"{base}/things/secret-name?key=AIzaSecretKey123") == 200
        assert status(f"{base}/things/other") == 200
        assert status(f"{base}/things/big", {"X-Size": "large"}) == 413
        assert status(f"{base}/no/such/path-secret") == 404
    assert sample("civmon_api_requests_total", **route, code="200") == ok + 2
    assert sample("civmon_api_requests_total", **route, code="413") == refused + 1  # refused before routing
    assert sample("civmon_api_requests_total", endpoint="unmatched", code="404") == missing + 1
    assert sample("civmon_api_request_duration_seconds_count", **route) == timed + 3
    assert sample("civmon_api_request_duration_seconds_bucket", **route, le="5.0") >= 2
    body = metrics_body()[0].decode()
    assert "secret" not in body.lower() and "AIza" not in body
    assert not [f.name for f in text_string_to_metric_families(body) if not f.name.startswith("civmon_")]


WORKER = (
    "import sys; from monitor.api.monitoring import record_request, metrics_body; "
    "record_request('/v1/score', 200, 0.02); sys.stdout.buffer.write(metrics_body()[0])"
)
PARENT = f"""
import subprocess, sys
from pathlib import Path
from monitor.api.monitoring import prepare_multiprocess, record_request
record_request('/v1/score', 200, 0.02)  # the parent imported prometheus_client first: it counts in memory, unseen
prepare_multiprocess(Path(sys.argv[1]))
subprocess.run([sys.executable, "-c", {WORKER!r}], check=True, capture_output=True)  # a worker that has exited
sys.stdout.write(subprocess.run([sys.executable, "-c", {WORKER!r}], check=True, capture_output=True, text=True).stdout)
"""


def test_metrics_merge_worker_processes(tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"left by an earlier run")  # unreadable: it must be cleared first
    env = {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}
    run = subprocess.run(
        [sys.executable, "-c", PARENT, str(folder)], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(run.stdout)
        for s in family.samples
    }
    assert samples[("civmon_api_requests_total", (("code", "200"), ("endpoint", "/v1/score")))] == 2
    assert samples[("civmon_api_request_duration_seconds_count", (("endpoint", "/v1/score"),))] == 2
    assert not any(name.startswith(("process_", "python_")) for name, _ in samples)
