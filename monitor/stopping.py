"""A stop request shared by every stage: set on SIGTERM/SIGINT, checked between batches, so the
batch in flight is committed (or rolled back) whole and nothing is left half-written."""

from __future__ import annotations

import threading

STOP = threading.Event()


def stop_requested() -> bool:
    return STOP.is_set()
