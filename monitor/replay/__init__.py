"""Replay recorded Reddit API traffic over local HTTP, with optional fault injection.

Lets the real praw/prawcore client run end to end without internet::

    with ReplayServer([cassette_dir], FaultPlan(seed=1, rate=0.2)) as server:
        reddit = praw.Reddit(..., oauth_url=server.url, reddit_url=server.url)
"""

from monitor.replay.cassettes import (
    PLACEHOLDERS,
    VOLATILE_QUERY_KEYS,
    CassetteLibrary,
    RecordedResponse,
    ReplayRequest,
    load_cassettes,
)
from monitor.replay.server import BAD_CLIENT_ID, FAULT_KINDS, FaultPlan, ReplayServer

__all__ = [
    "BAD_CLIENT_ID",
    "FAULT_KINDS",
    "PLACEHOLDERS",
    "VOLATILE_QUERY_KEYS",
    "CassetteLibrary",
    "FaultPlan",
    "RecordedResponse",
    "ReplayRequest",
    "ReplayServer",
    "load_cassettes",
]
