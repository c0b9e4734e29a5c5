"""A seeded store for the dashboard: three communities over six weeks, reply trees, a derailing thread, a
hostility spike that raises alerts, and a run log. Built with seed.py's Seed/seed, then rollups.rebuild and
alerts.evaluate, as the metrics job would. Deterministic for a given `last_day`.

Used by tests/test_dashboard.py (fixed days) and scripts/screenshots.py (days up to yesterday).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from sqlalchemy import Engine, select, update

from monitor.config import AlertSettings
from monitor.metrics import alerts, rollups
from monitor.records import CommunityRef
from monitor.store.db import transaction
from monitor.store.models import Alert, CollectionRun, Comment, Community, ModelVersion, RunStatus, Thread

from seed import DAY, MODEL, MONDAY, Seed, seed

HOUR = 3600
DAYS = 42  # the 7 days shown as "now", their 28-day baseline, and a week before
LAST_DAY = MONDAY + (DAYS - 1) * DAY  # default: the data run from 2023-11-20 to 2023-12-31 (UTC)
SPIKE = CommunityRef("reddit", "seeded")
CALM = CommunityRef("reddit", "AskCalm")
NEWS = CommunityRef("hackernews", "top")
TIMEZONES = {SPIKE: "Europe/Berlin", CALM: "America/New_York", NEWS: "UTC"}
DERAIL_THREAD = "derail"
DERAIL_TURN = "s_derail_12"  # the first hostile comment after its civil opening

CIVIL_TEXT = [
    "Thanks for explaining, that makes sense to me now.",
    "Good point. I had not thought about the licensing side of it.",
    "I see it differently, but I appreciate the sources you linked.",
    "This is really helpful, thank you for taking the time.",
    "Could you say more about how you measured that?",
    "Fair enough, I stand corrected on the dates.",
]
HOSTILE_TEXT = [
    "This is the dumbest take I have read all week.",
    "Nobody asked for your garbage opinion, get lost.",
    "You clearly have no idea what you are talking about, clown.",
    "What an idiot. Read a book before you post.",
    "Shut up. People like you ruin every thread.",
]
TITLES = [
    "What is a book that changed how you think?",
    "Weekly discussion thread",
    "Moving to a new city: advice?",
    "Is remote work here to stay?",
    "Show your setup",
    "The new policy, explained",
    "What are you learning this month?",
    "Ask anything: weekly help thread",
]


@dataclass(frozen=True)
class Plan:
    ref: CommunityRef
    prefix: str
    per_day: int
    hostile_p: float
    days: int  # the community's data cover its last `days` days
    spike_p: float | None = None  # hostile share on the last day


PLANS = [
    Plan(SPIKE, "s", 40, 0.08, DAYS, spike_p=0.3),
    Plan(CALM, "c", 16, 0.04, DAYS),
    Plan(NEWS, "n", 12, 0.12, 10),
]


@dataclass
class Seeded:
    last_day: int  # start of the last day with data (UTC)
    end_utc: int  # just after the last comment
    items: dict[CommunityRef, list[Seed]] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)


def pseudonym(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def _day(plan: Plan, rng: random.Random, day: int, index: int, authors: list[str]) -> list[Seed]:
    """One day of a community: threads of about ten comments, each a reply tree in time order; a reply to a
    hostile comment is three times as likely to be hostile."""
    last = index == plan.days - 1
    p = plan.spike_p if last and plan.spike_p is not None else plan.hostile_p
    threads = max(1, plan.per_day // 10)
    items: list[Seed] = []
    in_thread: dict[int, list[Seed]] = {t: [] for t in range(threads)}
    for j in range(plan.per_day):
        t = j % threads
        thread = f"{plan.prefix}{index}t{t}"
        earlier = in_thread[t]
        parent = rng.choice(earlier) if earlier and rng.random() < 0.7 else None
        parent_hostile = parent is not None and (parent.hostility or 0) >= 0.5
        hostile = rng.random() < min(0.95, p * 3 if parent_hostile else p)
        h = rng.uniform(0.6, 0.97) if hostile else rng.uniform(0.02, 0.4)
        item = Seed(
            f"{plan.prefix}_{index}_{j}",
            day + 6 * HOUR + j * (16 * HOUR // plan.per_day),
            round(h, 4),
            thread=thread,
            parent=parent.id if parent else None,
            depth=parent.depth + 1 if parent else 0,
            author=rng.choice(authors[:8]) if hostile and rng.random() < 0.6 else rng.choice(authors),
            respect=round(rng.uniform(0.05, 0.3) if hostile else rng.uniform(0.5, 0.9), 4),
            warmth=round(rng.uniform(0.02, 0.2) if hostile else rng.uniform(0.3, 0.8), 4),
        )
        in_thread[t].append(item)
        items.append(item)
    return items


def _derail(day: int) -> list[Seed]:
    """26 comments in two hours: ten civil, then hostile at 12, 15, 17, 18, 20, 22, 24, 25 (8 of 16 = 50%)."""
    items: list[Seed] = []
    for i in range(26):
        hostile = i in (12, 15, 17, 18, 20, 22, 24, 25)
        parent = items[i - 1] if i and i % 5 else (items[0] if i else None)
        items.append(
            Seed(
                f"s_derail_{i}",
                day + 14 * HOUR + i * 280,
                0.88 if hostile else 0.12 + 0.01 * (i % 5),
                thread=DERAIL_THREAD,
                parent=parent.id if parent else None,
                depth=parent.depth + 1 if parent else 0,
                author=pseudonym(f"derail{i % 7}"),
                respect=0.2 if hostile else 0.7,
                warmth=0.1 if hostile else 0.6,
            )
        )
    return items


def build(
    engine: Engine, last_day: int = LAST_DAY, settings: AlertSettings | None = None, runs_until: int | None = None
) -> Seeded:
    """Seed a migrated, empty store; returns what was written. The run log ends at `runs_until` (default: just
    after the last comment)."""
    rng = random.Random(7)
    authors = [pseudonym(f"user{i}") for i in range(60)]
    result = Seeded(last_day, last_day + DAY)
    for plan in PLANS:
        items = []
        for index in range(plan.days):
            items += _day(plan, rng, last_day - (plan.days - 1 - index) * DAY, index, authors)
        if plan.ref == SPIKE:
            items += _derail(last_day - 3 * DAY)
        seed(engine, items, plan.ref)
        result.items[plan.ref] = items
    result.end_utc = max(i.created for items in result.items.values() for i in items) + 1
    _dress(engine, result)
    rollups.rebuild(engine, MODEL)
    result.alerts = alerts.evaluate(engine, MODEL, settings or AlertSettings(), now=result.end_utc)
    _history(engine, result, runs_until or result.end_utc)
    return result


def _dress(engine: Engine, result: Seeded) -> None:
    """What seed() leaves plain: thread titles, permalinks (Reddit's relative, HN's absolute), readable text."""
    rng = random.Random(11)
    with transaction(engine) as session:
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.version == MODEL)
            .values(name="alliance-minilm (seeded)", created_utc=result.last_day - 60 * DAY)
        )
        refs = {(c.platform, c.name): c.id for c in session.scalars(select(Community))}
        for ref, items in result.items.items():
            cid = refs[(ref.platform, ref.name)]
            threads = dict(
                session.execute(select(Thread.platform_id, Thread.id).where(Thread.community_id == cid)).all()
            )
            session.execute(
                update(Thread),
                [
                    {
                        "id": tid,
                        "title": "It started as a simple question about a changelog"
                        if pid == DERAIL_THREAD
                        else TITLES[sum(map(ord, pid)) % len(TITLES)],
                        "permalink": f"/r/{ref.name}/comments/{pid}/"
                        if ref.platform == "reddit"
                        else f"https://news.ycombinator.com/item?id={pid}",
                    }
                    for pid, tid in threads.items()
                ],
            )
            ids = dict(
                session.execute(select(Comment.platform_id, Comment.id).where(Comment.community_id == cid)).all()
            )
            session.execute(
                update(Comment),
                [
                    {
                        "id": ids[i.id],
                        "permalink": f"/r/{ref.name}/comments/{i.thread}/_/{i.id}/"
                        if ref.platform == "reddit"
                        else f"https://news.ycombinator.com/item?id={i.id}",
                        "body": rng.choice(HOSTILE_TEXT if (i.hostility or 0) >= 0.5 else CIVIL_TEXT),
                    }
                    for i in items
                ],
            )


def _history(engine: Engine, result: Seeded, end: int) -> None:
    """A run log (ok, partial and failed runs) and one alert from earlier, already acknowledged."""
    with transaction(engine) as session:
        ids = {(c.platform, c.name): c.id for c in session.scalars(select(Community))}
        spike, calm, news = (ids[(r.platform, r.name)] for r in (SPIKE, CALM, NEWS))
        runs = []
        for k in range(8):  # every three hours, newest last
            started = end - (8 - k) * 3 * HOUR
            for cid in (spike, calm, news):
                status, error, errors = RunStatus.OK, None, 0
                if cid == calm and k == 5:
                    status, error, errors = RunStatus.PARTIAL, "2 requests failed after retries: HTTP 503", 2
                if cid == news and k >= 6:
                    status, error, errors = RunStatus.FAILED, "HTTPError: 429 Too Many Requests (budget spent)", 1
                runs.append(
                    CollectionRun(
                        job="collect",
                        community_id=cid,
                        started_utc=started,
                        finished_utc=started + 40 + 5 * cid,
                        status=status,
                        items_new=20 + 3 * k,
                        items_updated=k,
                        items_deleted=k % 2,
                        requests=12 + k,
                        errors=errors,
                        error=error,
                    )
                )
            runs.append(
                CollectionRun(
                    job="score",
                    community_id=None,
                    started_utc=started + 120,
                    finished_utc=started + 180,
                    status=RunStatus.OK,
                    items_new=60,
                )
            )
        session.add_all(runs)
        session.add(
            Alert(
                community_id=calm,
                kind="thread",
                subject=f"c{DAYS - 9}t0",
                model_version=MODEL,
                start_utc=result.end_utc - 9 * DAY,
                value=0.6,
                baseline=0.05,
                scored=10,
                message=f"thread c{DAYS - 9}t0 in reddit/AskCalm: thread 0.60 against a baseline of 0.05",
                created_utc=result.end_utc - 9 * DAY + HOUR,
                acknowledged_utc=result.end_utc - 9 * DAY + 3 * HOUR,
            )
        )
