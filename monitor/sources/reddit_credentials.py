"""Where Reddit credentials come from: praw's own environment variables (praw_client_id,
praw_client_secret) or a praw.ini site, read by praw itself. civmon never stores them."""

from __future__ import annotations

import configparser

from praw.config import Config

from monitor.config import RedditSettings

HOW_TO = (
    "create a 'script' app at https://www.reddit.com/prefs/apps, then export praw_client_id and "
    "praw_client_secret, or put client_id and client_secret in the [{site}] section of praw.ini"
)


def credentials_problem(reddit: RedditSettings) -> str | None:
    """Why a read-only Reddit client could not authenticate, or None when it has what it needs."""
    try:
        config = Config(reddit.site)
    except configparser.NoSectionError:
        return f"praw.ini has no [{reddit.site}] section (set by [reddit] site)"
    missing = [
        name
        for name in ("client_id", "client_secret")
        if isinstance(getattr(config, name), type(Config.CONFIG_NOT_SET))
    ]
    if missing:
        return f"Reddit {' and '.join(missing)} not set"
    return None
