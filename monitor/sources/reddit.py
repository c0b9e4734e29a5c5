"""Reddit through praw: a read-only script app, incremental, polite and crash-safe.

Each run of a subreddit reads
1. new submissions (/r/NAME/new) down to the newest one the last complete pass saw;
2. new comments (/r/NAME/comments) the same way;
3. the whole comment trees of the community's pinned threads and of threads still
   active (started or commented on within `active_window_hours`), least recently read
   first, expanding "load more comments" and "continue this thread" within
   `more_comments_budget` per thread.

Listings are read newest first, a page at a time; each page is written together with
a checkpoint saying where the pass got to, so a run killed anywhere resumes the pass
from the page after the last one written: nothing is lost, and the idempotent store
keeps nothing twice. The pass's high-water mark moves only when the pass completes.
A thread's tree is written whole, in one transaction, or not at all.

Requests go through `monitor.sources.http`: counted against the run's budget and
retried there when transient; prawcore follows Reddit's rate-limit headers on top.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import takewhile
from typing import Any, TypeVar

import praw
import prawcore
from praw.exceptions import DuplicateReplaceException
from praw.models import Comment, MoreComments, Submission
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, stop_when_event_set, wait_exponential

from monitor.config import CollectorSettings, CommunitySettings, RedditSettings
from monitor.errors import CivmonError
from monitor.records import CommentRecord, ThreadRecord
from monitor.sources.http import BudgetExhausted, RequestBudget, RetryPolicy, polite_session
from monitor.sources.reddit_records import comment_record, thread_record, thread_stub
from monitor.sources.sink import CommunitySink
from monitor.stopping import STOP, stop_requested
from monitor.store.runs import RunCounts

log = logging.getLogger(__name__)
PAGE = 100  # Reddit's largest listing page
T = TypeVar("T")

# Still failing after the HTTP layer's retries: worth another go at the level of a page or a thread.
TRANSIENT = (
    prawcore.exceptions.ServerError,
    prawcore.exceptions.TooManyRequests,
    prawcore.exceptions.BadJSON,
    DuplicateReplaceException,  # praw lost track of its "more comments": read the thread again
)
UNAVAILABLE = (
    prawcore.exceptions.Forbidden,
    prawcore.exceptions.NotFound,
    prawcore.exceptions.Redirect,
    prawcore.exceptions.UnavailableForLegalReasons,
)


CREDENTIALS_HINT = "check praw_client_id and praw_client_secret (or praw.ini) belong to a 'script' app"


class CommunityUnavailable(CivmonError):
    """The subreddit cannot be read (private, banned, quarantined, missing): skip it this run."""


def make_reddit(settings: RedditSettings, budget: RequestBudget, policy: RetryPolicy) -> praw.Reddit:
    """A read-only client; credentials come from praw_* environment variables or praw.ini."""
    session = polite_session(budget, policy, settings.user_agent)
    return praw.Reddit(
        settings.site,
        user_agent=settings.user_agent,
        oauth_url=settings.oauth_url,
        reddit_url=settings.reddit_url,
        check_for_updates=False,
        check_for_async=False,
        requestor_kwargs={"session": session},
    )


def _unavailable(name: str, exc: Exception) -> CommunityUnavailable:
    reasons = {
        prawcore.exceptions.Forbidden: "is private or quarantined (403 Forbidden)",
        prawcore.exceptions.NotFound: "is banned or does not exist (404 Not Found)",
        prawcore.exceptions.Redirect: "does not exist (Reddit redirects to search)",
        prawcore.exceptions.UnavailableForLegalReasons: "is blocked for legal reasons (451)",
    }
    reason = next((text for cls, text in reasons.items() if isinstance(exc, cls)), str(exc))
    return CommunityUnavailable(f"r/{name} {reason}; skipped this run")


def budget_spent(exc: BaseException) -> bool:
    """prawcore wraps whatever its HTTP session raised, our BudgetExhausted included."""
    return isinstance(exc, BudgetExhausted) or isinstance(getattr(exc, "original_exception", None), BudgetExhausted)


@dataclass
class Pass:
    """Progress of one newest-first pass over a listing, as stored in its checkpoint."""

    mark: str | None = None  # newest id the last complete pass saw: stop there
    top: str | None = None  # newest id this pass saw: the next mark
    after: str | None = None  # fullname to continue from after a crash

    @classmethod
    def load(cls, position: str | None) -> Pass:
        return cls(**json.loads(position)) if position else cls()

    def dump(self) -> str:
        return json.dumps({"mark": self.mark, "top": self.top, "after": self.after})

    def reached_mark(self, item_id: str) -> bool:
        return self.mark is not None and int(item_id, 36) <= int(self.mark, 36)

    def unseen(self, page: list[Any]) -> list[Any]:
        """The items of a newest-first page above the mark."""
        return list(takewhile(lambda item: not self.reached_mark(item.id), page))


class RedditCollector:
    def __init__(
        self, reddit: praw.Reddit, budget: RequestBudget, community: CommunitySettings, settings: CollectorSettings
    ) -> None:
        self.reddit = reddit
        self.budget = budget
        self.community = community
        self.name = community.name
        self.settings = settings
        self._retrying = Retrying(
            retry=retry_if_exception_type(TRANSIENT),
            wait=wait_exponential(multiplier=settings.retry_wait_seconds, max=120),
            stop=stop_after_attempt(settings.retry_attempts) | stop_when_event_set(STOP),
            sleep=STOP.wait,  # a stop request ends the wait at once
            reraise=True,
        )

    def collect(self, sink: CommunitySink, counts: RunCounts) -> None:
        try:
            if "new" in self.community.listings:
                self._listing(sink, "submissions", "new", self._submission_page)
            if "comments" in self.community.listings:
                self._listing(sink, "comments", "comments", self._comment_page)
            self._trees(sink, counts)
        except UNAVAILABLE as exc:
            raise _unavailable(self.name, exc) from None
        except (prawcore.exceptions.OAuthException, prawcore.exceptions.InvalidToken) as exc:
            raise CommunityUnavailable(f"Reddit refused the credentials ({exc}): {CREDENTIALS_HINT}") from None
        except prawcore.exceptions.BadJSON as exc:  # prawcore says only "received 200 HTTP response"
            raise CommunityUnavailable(
                f"Reddit answered HTTP {exc.response.status_code} with something that is not JSON (an outage or "
                f"maintenance page?) {self.settings.retry_attempts} times; skipped this run, the next one tries again"
            ) from None
        except prawcore.exceptions.ResponseException as exc:
            if exc.response.status_code != 401:
                raise
            raise CommunityUnavailable(
                f"Reddit refused the credentials (401 Unauthorized): {CREDENTIALS_HINT}"
            ) from None
        except (BudgetExhausted, prawcore.exceptions.RequestException) as exc:
            if not budget_spent(exc):
                raise
            counts.errors.append(f"request budget of {self.budget.limit} used; the rest waits for the next run")
        finally:
            counts.requests = self.budget.used

    # -- listings ------------------------------------------------------------------------------

    def _listing(
        self,
        sink: CommunitySink,
        stream: str,
        endpoint: str,
        records: Callable[[list[Any]], tuple[list[ThreadRecord], list[CommentRecord]]],
    ) -> None:
        progress = Pass.load(sink.checkpoint(stream))
        limit = self.settings.submissions_per_run if stream == "submissions" else self.settings.comments_per_run
        read = 0
        while (want := min(PAGE, limit - read)) > 0 and not stop_requested():
            page = self._call(self._page, endpoint, progress.after, want)
            fresh = progress.unseen(page)
            if fresh:
                progress.top = progress.top or fresh[0].id
                progress.after = fresh[-1].fullname
                read += len(fresh)
            # Done at the mark or the listing's end; a first pass (no mark yet) also at the run's limit,
            # since backfilling history is what dump imports are for.
            done = len(fresh) < len(page) or len(page) < want or (progress.mark is None and read >= limit)
            if done:
                progress = Pass(mark=progress.top or progress.mark)
            sink.write(*records(fresh), checkpoints={stream: progress.dump()})
            if done:
                return
        # The run's limit came before the mark: the next run fills the gap from `after`.

    def _page(self, endpoint: str, after: str | None, limit: int) -> list[Any]:
        params = {"limit": limit, "raw_json": 1} | ({"after": after} if after else {})
        return list(self.reddit.get(f"r/{self.name}/{endpoint}", params=params))

    @staticmethod
    def _submission_page(items: list[Submission]) -> tuple[list[ThreadRecord], list[CommentRecord]]:
        return [thread_record(vars(s)) for s in items], []

    @staticmethod
    def _comment_page(items: list[Comment]) -> tuple[list[ThreadRecord], list[CommentRecord]]:
        return [thread_stub(vars(c)) for c in items], [comment_record(vars(c)) for c in items]

    # -- whole threads -------------------------------------------------------------------------

    def _trees(self, sink: CommunitySink, counts: RunCounts) -> None:
        active = sink.threads_to_refresh(self.settings.active_window_hours, self.settings.threads_per_run)
        for thread_id in dict.fromkeys([*self.community.threads, *active]):  # pinned first, no repeats
            if stop_requested():
                return
            try:
                thread, comments, unexpanded = self._call(self._tree, thread_id)
            except (prawcore.exceptions.NotFound, prawcore.exceptions.Forbidden) as exc:
                counts.errors.append(f"thread {thread_id} unavailable ({exc})")
                continue
            sink.write([thread], comments, refreshed=[thread_id])
            if unexpanded:
                counts.errors.append(  # each run expands the same first ones: a later run does not read these
                    f"thread {thread_id}: {unexpanded} 'load more comments' not expanded within "
                    f"[collector] more_comments_budget ({self.settings.more_comments_budget}); raise it to read them"
                )

    def _tree(self, thread_id: str) -> tuple[ThreadRecord, list[CommentRecord], int]:
        submission = self.reddit.submission(thread_id)
        left = submission.comments.replace_more(limit=self.settings.more_comments_budget)
        flat = submission.comments.list()
        return thread_record(vars(submission)), tree_records(flat), sum(1 for m in left if isinstance(m, MoreComments))

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return self._retrying(fn, *args)


def tree_records(flat: Iterable[Comment | MoreComments]) -> list[CommentRecord]:
    """A thread's comments with their depth (0 answers the thread); praw lists parents before replies."""
    depth: dict[str, int | None] = {}
    records = []
    for comment in flat:
        if isinstance(comment, MoreComments):
            continue
        parent_kind, parent_id = comment.parent_id.split("_", 1)
        parent_depth = depth.get(parent_id)
        depth[comment.id] = 0 if parent_kind == "t3" else None if parent_depth is None else parent_depth + 1
        records.append(comment_record(vars(comment), depth=depth[comment.id]))
    return records
