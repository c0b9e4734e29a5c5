"""One run at a time over the same output: an exclusive flock on a folder or a lock file, held for a block."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from monitor.errors import CivmonError


@contextmanager
def exclusive(path: Path, busy: CivmonError) -> Iterator[None]:
    """Holds the lock on `path`, a folder (its own descriptor: no file left among the output's) or a lock file
    (made where missing); `busy` is raised where another process holds it. The lock goes with the descriptor's
    closing, and with the process if it dies. flock may not reach other machines on a shared filesystem."""
    descriptor = os.open(path, os.O_RDONLY if path.is_dir() else os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        yield
    finally:
        os.close(descriptor)
