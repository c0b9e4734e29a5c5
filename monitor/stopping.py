"""A stop request shared by every stage: set on SIGTERM/SIGINT, checked between batches, so the
batch in flight is committed (or rolled back) whole and nothing is left half-written."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP = threading.Event()


def stop_requested() -> bool:
    return STOP.is_set()


@contextmanager
def exiting_on(*signals: signal.Signals) -> Iterator[None]:
    """Within: each of `signals` (SIGTERM from systemd, Slurm or `timeout`; SIGHUP from a closed terminal) ends
    the process as Ctrl-C does, by an exception in the main thread (exit status 128 + its number), so that
    `finally` blocks remove what the run left half-done; the earlier handlers come back after."""

    def leave(number: int, _: FrameType | None) -> None:
        raise SystemExit(128 + number)

    earlier = {s: signal.signal(s, leave) for s in signals}
    try:
        yield
    finally:
        for s, handler in earlier.items():
            signal.signal(s, handler)
