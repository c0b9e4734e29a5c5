"""End-to-end tests of the replay server with the real praw/prawcore client.

What the fault tests establish for the collector (praw 8 / prawcore 4):

* prawcore retries by itself, up to 2 retries (3 attempts), on 500, 502, 503,
  504, 520 and 522 and on connection errors ("reset") and read timeouts
  ("timeout"). It sleeps 0-2 s before the 1st retry and 2-4 s before the 2nd;
  these tests zero that backoff (the retry count is unchanged) to stay fast.
  When every attempt fails it raises ``prawcore.ServerError`` (5xx) or
  ``prawcore.RequestException`` (connection/timeout).
* 429 is never retried: ``prawcore.TooManyRequests`` surfaces at once, and after
  a 429 announcing ``x-ratelimit-remaining: 0`` prawcore delays the next request
  by at least 1 s. A 200 with an invalid body raises ``prawcore.BadJSON`` at once.
* Bad client credentials raise ``prawcore.ResponseException`` (HTTP 401);
  unsupported grants (e.g. a script app's password grant) raise
  ``prawcore.OAuthException``.
* Calling ``replace_more`` again after such an error resumes where it stopped,
  except on threads with several "continue this thread" markers: praw 8.0.3's
  ``MoreComments.__eq__`` makes those markers equal, so ``list.remove`` may drop
  the wrong one and the next call raises ``DuplicateReplaceException`` (seen
  on the n49rw thread). A collector should retry 429/bad JSON below praw or
  refetch the thread on that exception.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import praw
import prawcore
import pytest
import requests

from monitor.replay import BAD_CLIENT_ID, FAULT_KINDS, FaultPlan, ReplayServer

from recordings import LARGE_THREAD, require_cassettes, responses, things

T = TypeVar("T")

# Surfaced by praw to the caller under faults; anything else is a bug.
SURFACED = (prawcore.ServerError, prawcore.TooManyRequests, prawcore.BadJSON, prawcore.RequestException)
CLIENT_TIMEOUT_S = 0.2


@pytest.fixture(scope="module")
def cassette_dirs() -> list[Path]:
    return require_cassettes()


@pytest.fixture
def no_retry_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prawcore.sessions.FiniteRetryStrategy, "_sleep_seconds", lambda self: None)


@pytest.fixture
def server(cassette_dirs: list[Path]) -> Iterator[ReplayServer]:
    with ReplayServer(cassette_dirs) as replay:
        yield replay


class _ShortTimeoutSession(requests.Session):
    """prawcore always passes its own 16 s timeout; a test cannot wait that long."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["timeout"] = CLIENT_TIMEOUT_S
        return super().request(*args, **kwargs)


def _reddit(server: ReplayServer, client_id: str = "civmon-test", **settings: Any) -> praw.Reddit:
    return praw.Reddit(
        client_id=client_id,
        client_secret="secret",
        user_agent="civmon replay tests",
        oauth_url=server.url,
        reddit_url=server.url,
        check_for_updates=False,
        check_for_async=False,
        **settings,
    )


def _recorded_ids(cassette: str, kind: str) -> list[str]:
    """Ids of every ``kind`` object in a cassette's responses, repeats included."""
    return [item["id"] for body in responses(cassette) for item in things(body, kind)]


def _until_done(action: Callable[[], T], raised: list[Exception], attempts: int = 20) -> T:
    """Call ``action`` again after every error praw surfaces, as a collector would."""
    for _ in range(attempts):
        try:
            return action()
        except SURFACED as error:
            raised.append(error)
    raise AssertionError(f"still failing after {attempts} attempts: {raised[-3:]}")


def _replace_all(submission: praw.models.Submission) -> list[str]:
    submission.comments.replace_more(limit=None)
    return [comment.id for comment in submission.comments.list()]


# -- plain replay ------------------------------------------------------------


def test_subreddit_new_listing_serves_recorded_items(server: ReplayServer, cassette_dirs: list[Path]) -> None:
    submissions = list(_reddit(server).subreddit("askreddit").new(limit=100))

    expected = _recorded_ids("TestSubredditListings.test_new", "t3")
    assert [s.id for s in submissions] == expected
    assert len(expected) == 100
    assert server.misses == []


def test_subreddit_comments_listing_serves_recorded_items(server: ReplayServer, cassette_dirs: list[Path]) -> None:
    comments = list(_reddit(server).subreddit("AskReddit").comments(limit=100))

    assert [c.id for c in comments] == _recorded_ids("TestSubredditListings.test_comments", "t1")
    assert {c.subreddit.display_name.lower() for c in comments} == {"askreddit"}
    assert all(c.body for c in comments)
    assert server.misses == []


def test_placeholder_subreddit_is_served_as_test(server: ReplayServer) -> None:
    comments = list(_reddit(server).subreddit("test").comments(limit=100))

    assert len(comments) == 100
    assert {c.subreddit.display_name for c in comments} == {"test"}
    assert server.misses == []


def test_large_thread_replace_more_yields_every_recorded_comment(
    server: ReplayServer, cassette_dirs: list[Path]
) -> None:
    recorded = _recorded_ids(LARGE_THREAD, "t1")
    # 1,431 comment objects; the three "continue this thread" answers repeat their parent.
    assert len(recorded) == 1431
    assert len(set(recorded)) == 1428

    ids = _replace_all(_reddit(server).submission("n49rw"))

    assert len(ids) == len(set(ids)) == 1428
    assert set(ids) == set(recorded)
    assert server.misses == []
    assert server.requests_by_path["/api/morechildren/"] == 232


def test_unrecorded_request_is_a_404_miss(server: ReplayServer) -> None:
    with pytest.raises(prawcore.NotFound):
        list(_reddit(server).subreddit("civmon_never_recorded").new(limit=10))

    assert [(m.method, m.path) for m in server.misses] == [("GET", "/r/civmon_never_recorded/new")]


# -- credentials -------------------------------------------------------------------


def test_bad_client_credentials_raise_response_exception(server: ReplayServer) -> None:
    with pytest.raises(prawcore.ResponseException) as caught:
        list(_reddit(server, client_id=BAD_CLIENT_ID).subreddit("askreddit").new(limit=100))

    assert caught.value.response.status_code == 401
    assert server.requests_by_path == {"/api/v1/access_token": 1}


def test_password_grant_is_refused_with_oauth_exception(server: ReplayServer) -> None:
    reddit = _reddit(server, username="someone", password="hunter2")

    with pytest.raises(prawcore.OAuthException, match="unsupported_grant_type"):
        list(reddit.subreddit("askreddit").new(limit=100))


# -- faults ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error", "cause", "attempts"),
    [
        *[(code, prawcore.ServerError, None, 3) for code in ("500", "502", "503", "504", "520", "522")],
        ("reset", prawcore.RequestException, requests.ConnectionError, 3),
        ("timeout", prawcore.RequestException, requests.ReadTimeout, 3),
        ("429", prawcore.TooManyRequests, None, 1),
        ("429-bare", prawcore.TooManyRequests, None, 1),
        ("bad-json", prawcore.BadJSON, None, 1),
    ],
)
@pytest.mark.usefixtures("no_retry_backoff")
def test_each_fault_kind_is_retried_or_surfaced(
    cassette_dirs: list[Path], kind: str, error: type[Exception], cause: type[Exception] | None, attempts: int
) -> None:
    plan = FaultPlan(seed=0, rate=1.0, kinds=(kind,), client_timeout=CLIENT_TIMEOUT_S)
    with ReplayServer(cassette_dirs, plan) as server:
        reddit = _reddit(server, requestor_kwargs={"session": _ShortTimeoutSession()})
        with pytest.raises(error) as caught:
            list(reddit.subreddit("askreddit").new(limit=100))

        if cause is not None:
            assert isinstance(caught.value.original_exception, cause)  # type: ignore[attr-defined]

        assert server.faults_injected == {kind: attempts}
        assert server.requests_by_path["/r/askreddit/new"] == attempts


@pytest.mark.usefixtures("no_retry_backoff")
def test_collector_gets_every_recorded_item_through_faults(cassette_dirs: list[Path]) -> None:
    def collect(server: ReplayServer, raised: list[Exception]) -> tuple[list[str], list[str]]:
        reddit = _reddit(server)
        listing = _until_done(lambda: [s.id for s in reddit.subreddit("askreddit").new(limit=100)], raised)
        # replace_more keeps what it already fetched, so calling it again resumes.
        submission = reddit.submission("3hahrw")
        _until_done(lambda: submission.comments.replace_more(limit=None), raised)
        return listing, [comment.id for comment in submission.comments.list()]

    with ReplayServer(cassette_dirs) as clean:
        expected = collect(clean, [])

    kinds = ("429", "429-bare", "500", "502", "503", "504", "520", "522", "bad-json")
    raised: list[Exception] = []
    with ReplayServer(cassette_dirs, FaultPlan(seed=0, rate=0.2, kinds=kinds)) as faulty:
        assert collect(faulty, raised) == expected
        injected = Counter(faulty.faults_injected)
        assert faulty.misses == []

    assert len(expected[1]) == 541
    surfaced = Counter(type(error) for error in raised)
    assert set(surfaced) <= {prawcore.ServerError, prawcore.TooManyRequests, prawcore.BadJSON}
    # Every 429 and bad body reaches the caller; prawcore absorbs 5xx unless three come in a row.
    assert surfaced[prawcore.TooManyRequests] == injected["429"] + injected["429-bare"] > 0
    assert surfaced[prawcore.BadJSON] == injected["bad-json"] > 0
    server_errors = sum(injected[code] for code in ("500", "502", "503", "504", "520", "522"))
    assert server_errors > surfaced[prawcore.ServerError]


def test_fault_plan_is_deterministic_per_seed() -> None:
    def draws(seed: int) -> list[str | None]:
        plan = FaultPlan(seed=seed, rate=0.3)
        return [plan.pick(("GET", f"/r/x/{n}"), attempt) for n in range(50) for attempt in (1, 2)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    assert set(draws(1)) - {None} <= set(FAULT_KINDS)
    with pytest.raises(ValueError, match="fault kinds"):
        FaultPlan(seed=1, rate=0.1, kinds=("418",))


def test_command_line_serves_and_prints_url(cassette_dirs: list[Path]) -> None:
    command = [sys.executable, "-m", "monitor.replay", *map(str, cassette_dirs), "--fault-rate", "0.1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[0]
        token = requests.post(
            f"{url}/api/v1/access_token", data={"grant_type": "client_credentials"}, auth=("id", "secret"), timeout=5
        )
        assert token.json()["token_type"] == "bearer"
    finally:
        process.terminate()
        process.wait(timeout=5)
