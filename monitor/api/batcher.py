"""Concurrent requests' texts gathered into one model call: 200 texts cost one hop to the model's thread, not 200,
and the torch runtime (on a GPU) scores them as batches.

The model runs in one worker thread, one call at a time: ONNX Runtime already uses every core, and two calls at once
would only fight over them. While a call runs, new requests queue; the next call takes all of them, up to `max_batch`
texts. An idle model waits at most `window_s` after the first arrival for others to join it. The queue is bounded:
past `max_queue` texts a request is refused at once with `Overloaded`, saying when to retry.

A request bigger than `max_batch` on its own is scored whole in one call, with nobody else: `score_texts` already
splits a call into the scorer's batches, so this costs no more memory than pieces would; pieces queued first-come
would run back to back anyway, so no other request would be served sooner.

Whichever texts share a call, each text's scores are its own: the int8 runtime scores every text alone
(monitor/scoring/alliance.py), so the API gives what `civmon score` gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from monitor.api.monitoring import BATCH_TEXTS, QUEUE_TEXTS, TEXTS_SCORED
from monitor.scoring.results import Result


class Overloaded(Exception):
    """The queue is full; try again in `retry_after_s` seconds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the scoring queue is full; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Stopped(Exception):
    """The batcher is not running (not started yet, or shutting down)."""


@dataclass(eq=False)  # identity: a request is withdrawn from the queue as itself, not as an equal one
class _Request:
    texts: list[str]
    future: asyncio.Future[list[Result]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Batcher:
    def __init__(
        self, score: Callable[[list[str]], list[Result]], max_batch: int, window_s: float, max_queue: int
    ) -> None:
        self._score = score
        self.max_batch = max_batch
        self.window_s = window_s
        self.max_queue = max_queue
        self._queue: deque[_Request] = deque()
        self._queued = 0  # texts in the queue
        self._in_call = 0  # texts in the model call running now
        self._texts_per_s: float | None = None  # measured; None until the first call
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()  # a whole batch is waiting: no reason to wait out the window
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="civmon-model")
        self._task = asyncio.create_task(self._loop(), name="civmon-batcher")

    async def stop(self) -> None:
        """Stop taking work; every request still waiting, queued or in the running call, gets `Stopped`."""
        if self._task is None:
            return
        task, self._task = self._task, None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._fail(self._take_all(), Stopped("the server is shutting down; retry shortly"))
        assert self._executor is not None
        self._executor.shutdown(wait=False)  # a call still running finishes in its thread, its results unused
        QUEUE_TEXTS.set(0)  # a live gauge in multiprocess mode: this worker adds nothing any more

    async def score(self, texts: list[str]) -> list[Result]:
        """The results for `texts`, in their order, scored together in one model call."""
        if self._task is None:
            raise Stopped("the scoring service is not running; retry shortly")
        if not texts:
            return []
        if self._queued and self._queued + len(texts) > self.max_queue:
            raise Overloaded(self._retry_after())
        request = _Request(texts)
        self._queue.append(request)
        self._set_queued(self._queued + len(texts))
        self._arrived.set()
        try:
            return await request.future
        except asyncio.CancelledError:  # the client went away: its texts need no scoring
            self._withdraw(request)
            raise

    def _retry_after(self) -> int:
        if not self._texts_per_s:
            return 1
        return max(1, math.ceil((self._queued + self._in_call) / self._texts_per_s))

    def _set_queued(self, texts: int) -> None:
        self._queued = texts
        QUEUE_TEXTS.set(texts)
        if texts >= self.max_batch:
            self._full.set()
        else:
            self._full.clear()

    def _withdraw(self, request: _Request) -> None:
        if request in self._queue:  # not yet taken; a request in the running call just gets no answer
            self._queue.remove(request)
            self._set_queued(self._queued - len(request.texts))

    async def _loop(self) -> None:
        while True:
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
                with contextlib.suppress(TimeoutError):  # first arrival at an idle model: wait a moment for company
                    async with asyncio.timeout(self.window_s):
                        await self._full.wait()
            if self._queue:  # empty again if its requests were all withdrawn meanwhile
                await self._run(self._take())

    def _take(self) -> list[_Request]:
        """The oldest requests, up to max_batch texts; the first one whatever its size."""
        first = self._queue.popleft()
        batch, texts = [first], len(first.texts)
        while self._queue and texts + len(self._queue[0].texts) <= self.max_batch:
            texts += len(self._queue[0].texts)
            batch.append(self._queue.popleft())
        self._set_queued(self._queued - texts)
        return batch

    def _take_all(self) -> list[_Request]:
        batch = list(self._queue)
        self._queue.clear()
        self._set_queued(0)
        return batch

    async def _run(self, batch: list[_Request]) -> None:
        texts = [text for request in batch for text in request.texts]
        self._in_call = len(texts)
        started = time.perf_counter()
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, self._score, texts)
        except asyncio.CancelledError:  # stop(): this batch's waiters must not hang on a call nobody will read
            self._fail(batch, Stopped("the server is shutting down; retry shortly"))
            raise
        except Exception as exc:  # the model failed on this batch: its requests get the error, later ones carry on
            self._fail(batch, exc)
            return
        finally:
            self._in_call = 0
        self._measure(len(texts), time.perf_counter() - started)
        offset = 0
        for request in batch:
            if not request.future.done():  # a cancelled request's future is done already
                request.future.set_result(results[offset : offset + len(request.texts)])
            offset += len(request.texts)

    def _measure(self, texts: int, seconds: float) -> None:
        BATCH_TEXTS.observe(texts)
        TEXTS_SCORED.inc(texts)
        rate = texts / max(seconds, 1e-6)
        # smoothed, so one odd call (a cache miss, a burst of long texts) does not swing Retry-After
        self._texts_per_s = rate if self._texts_per_s is None else 0.8 * self._texts_per_s + 0.2 * rate

    @staticmethod
    def _fail(batch: list[_Request], exc: BaseException) -> None:
        for request in batch:
            if not request.future.done():
                request.future.set_exception(exc)
