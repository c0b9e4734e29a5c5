"""`civmon demo`: the whole pipeline on embedded defaults, for a newcomer's first run.

Picks its sources from what this machine has: Reddit credentials in the environment watch a
few subreddits; internet without credentials reads Hacker News; offline, a folder of
recorded reddit.com traffic is replayed on loopback to the real praw collector. Then it
runs collect -> score -> roll up for a few cycles, writes the configuration it used, and
(unless told not to) starts the dashboard.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomli_w

from monitor.config import DatabaseSettings, Settings
from monitor.errors import CivmonError
from monitor.metrics.job import run_metrics
from monitor.privacy import ensure_key_file
from monitor.records import CommunityRef
from monitor.scoring.models import load_scorer
from monitor.scoring.pending import score_pending
from monitor.sources.collect import collect
from monitor.sources.http import reachable
from monitor.sources.reddit_credentials import credentials_problem
from monitor.store import schema
from monitor.store.db import make_engine
from monitor.store.upsert import ensure_community

DEMO_CONFIG = Path("civmon-demo.toml")
# a store of its own: CIVMON_DATABASE__URL or a deployment's civmon.db in this folder must not take in demo data
DEMO_STORE = Path("civmon-demo.db")
LIVE_SUBREDDITS = ("AskHistorians", "changemyview", "science")
# What the recordings in praw's test suite hold: two subreddit listings' worth of r/askreddit and
# two whole large threads (their subreddits' listings were not recorded, so the threads are pinned).
REPLAY_COMMUNITIES = (
    {"platform": "reddit", "name": "askreddit"},
    {"platform": "reddit", "name": "announcements", "listings": [], "threads": ["n49rw"]},
    {"platform": "reddit", "name": "funny", "listings": [], "threads": ["3hahrw"]},
)
Say = Callable[[str], None]


def _internet() -> bool:
    return reachable(urlsplit(Settings().hackernews.api_url).hostname or "")


def _is_cassette(path: Path) -> bool:
    try:
        return "interactions" in json.loads(path.read_text())
    except (ValueError, OSError):
        return False


@dataclass
class Plan:
    source: str  # what the demo watches, in words
    overrides: dict[str, Any]  # configuration on top of the embedded defaults
    recordings: Path | None = None  # replayed on loopback when set


def plan(replay: Path | None, has_internet: Callable[[], bool] = _internet) -> Plan:
    """What to watch, from what this machine has."""
    if credentials_problem(Settings().reddit) is None:
        return Plan("live Reddit", {"communities": [{"platform": "reddit", "name": n} for n in LIVE_SUBREDDITS]})
    if replay is not None:
        folder = replay / "cassettes" if (replay / "cassettes").is_dir() else replay
        if not any(_is_cassette(path) for path in folder.glob("*.json")):
            raise CivmonError(
                f"{replay} holds no recorded traffic (*.json cassettes)",
                "pass the folder of praw's recordings, e.g. --replay ../shared/data/praw-cassettes",
            )
        collector = {
            "threads_per_run": 0,
            "comments_per_run": 100,
            "submissions_per_run": 100,
            "more_comments_budget": 1000,
        }
        return Plan(
            f"recorded reddit.com traffic from {folder}",
            {"communities": list(REPLAY_COMMUNITIES), "collector": collector},
            folder,
        )
    if has_internet():
        return Plan(
            "Hacker News (live)",
            {"communities": [{"platform": "hackernews", "name": "top"}], "collector": {"submissions_per_run": 15}},
        )
    raise CivmonError(
        "no internet, no Reddit credentials (praw_client_id / praw_client_secret) and no recorded traffic: "
        "nothing to collect",
        "pass recorded reddit.com traffic with --replay PATH (e.g. --replay ../shared/data/praw-cassettes), "
        "or run with internet (Hacker News needs no credentials)",
    )


@contextmanager
def _replayed(demo: Plan) -> Iterator[None]:
    """Serve the recordings on loopback for the run, pointing praw at them."""
    if demo.recordings is None:
        yield
        return
    from monitor.replay import ReplayServer

    with ReplayServer([demo.recordings]) as server:
        demo.overrides["reddit"] = {"oauth_url": server.url, "reddit_url": server.url}
        os.environ.setdefault("praw_client_id", "civmon-demo")  # the replay accepts any read-only client
        os.environ.setdefault("praw_client_secret", "civmon-demo")
        yield


def run_demo(replay: Path | None, cycles: int, say: Say) -> Path:
    """Run the pipeline `cycles` times; returns the configuration file it wrote."""
    demo = plan(replay)
    demo.overrides["database"] = {"url": f"sqlite:///{DEMO_STORE}"}
    say(f"watching: {demo.source}")
    with _replayed(demo):
        # the environment wins over a configuration, but not over the demo's own store
        settings = Settings(**demo.overrides).model_copy(
            update={"database": DatabaseSettings(**demo.overrides["database"])}
        )
        engine = make_engine(settings.database.url)
        schema.upgrade(engine)
        ensure_key_file(settings.privacy)
        for community in settings.communities:
            ensure_community(engine, CommunityRef(community.platform, community.name))
        scorer = load_scorer(settings.model)
        say(f"scoring model: {scorer.version}")
        for cycle in range(1, cycles + 1):
            outcomes = collect(settings, engine)
            collected = ", ".join(
                f"{o.community} +{o.counts.new}" + (f" ({o.failure})" if o.failure else "") for o in outcomes
            )
            scored = score_pending(engine, scorer, settings.privacy)
            summary = run_metrics(engine, settings.alerts)
            say(f"cycle {cycle}/{cycles}: collected {collected}; scored {scored.scored}; {len(summary.alerts)} alerts")
    # The replay's address dies with this process: the written configuration keeps everything else.
    DEMO_CONFIG.write_text(tomli_w.dumps({k: v for k, v in demo.overrides.items() if k != "reddit"}))
    return DEMO_CONFIG
