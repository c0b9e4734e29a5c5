"""HTTP for the collectors: polite and persistent.

Every attempt (retries included) is counted against the run's request budget, so a
run never sends more than it may. Answers that are worth trying again — 429 and 5xx
(honouring Retry-After), Cloudflare's 520/522, dropped connections, timeouts, and a
JSON answer that does not parse — are retried here with exponential back-off, below
the API client. That matters for praw: a `replace_more` that sees an error half-way
cannot safely be resumed (praw 8 can then lose a "continue this thread" subtree), so
it must not see transient errors at all.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential,
)

from monitor.stopping import STOP

log = logging.getLogger(__name__)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 522})
MAX_WAIT_S = 120


class BudgetExhausted(Exception):
    """The run used all the requests it may make; what was read so far is kept."""


@dataclass
class RequestBudget:
    limit: int
    used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def spend(self) -> None:
        with self._lock:  # collectors may fetch from several threads
            if self.used >= self.limit:
                raise BudgetExhausted(f"request budget of {self.limit} requests used")
            self.used += 1


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    wait_seconds: float = 2.0
    timeout_seconds: float = 16.0


class _Transient(Exception):
    def __init__(self, response: requests.Response) -> None:
        answer = f"HTTP {response.status_code}"
        if response.status_code not in RETRY_STATUSES:  # a status that looks fine, with a body that was not
            answer = f"broken JSON ({answer}, {len(response.content):,} bytes)"
        super().__init__(f"{answer} from {response.url}")
        self.response = response


def _broken_json(response: requests.Response) -> bool:
    if "json" not in response.headers.get("content-type", "") or not response.content:
        return False
    try:
        json.loads(response.content)
    except ValueError:
        return True
    return False


class PoliteAdapter(HTTPAdapter):
    def __init__(self, budget: RequestBudget, policy: RetryPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.budget = budget
        self.policy = policy
        self._backoff = wait_exponential(multiplier=policy.wait_seconds, max=MAX_WAIT_S)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["timeout"] = self.policy.timeout_seconds
        retrying = Retrying(
            retry=retry_if_exception_type((_Transient, requests.ConnectionError, requests.Timeout)),
            stop=stop_after_attempt(self.policy.attempts) | stop_when_event_set(STOP),
            wait=self._wait,
            sleep=STOP.wait,  # SIGTERM ends a wait of up to MAX_WAIT_S at once, not after it (systemd's 90 s)
            before_sleep=self._log,
            reraise=True,
        )
        try:
            return retrying(self._attempt, request, kwargs)
        except _Transient as exc:
            return exc.response  # out of attempts: the client reports the final answer its own way

    def _attempt(self, request: requests.PreparedRequest, kwargs: dict[str, Any]) -> requests.Response:
        self.budget.spend()
        response = super().send(request, **kwargs)
        if response.status_code in RETRY_STATUSES or _broken_json(response):
            raise _Transient(response)
        return response

    def _wait(self, state: RetryCallState) -> float:
        backoff = self._backoff(state)
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Transient):
            try:
                return min(max(backoff, float(error.response.headers.get("retry-after", 0))), MAX_WAIT_S)
            except ValueError:  # an HTTP date instead of seconds: back off as usual
                pass
        return backoff

    @staticmethod
    def _log(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s; attempt %d failed, retrying in %.1f s",
            error,
            state.attempt_number,
            state.next_action.sleep if state.next_action else 0,
        )


def reachable(host: str, timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to host:443 opens: a quick offline check before a slow, retrying client."""
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def polite_session(budget: RequestBudget, policy: RetryPolicy, user_agent: str, pool: int = 10) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    adapter = PoliteAdapter(budget, policy, pool_maxsize=pool)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
