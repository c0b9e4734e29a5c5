"""Run as a separate process by test_concurrency: writes a range of comments in many small transactions."""

from __future__ import annotations

import sys
import time

from monitor.config import PrivacySettings
from monitor.privacy import Pseudonymiser
from monitor.store.db import make_engine, transaction
from monitor.store.upsert import Writer

from records import COMMUNITY, comments, thread

BATCH = 100


def main(url: str, first: int, count: int) -> None:
    engine = make_engine(url)
    privacy = PrivacySettings()
    print(time.time(), flush=True)  # when writing began, so the test can check the writers overlapped
    for start in range(first, first + count, BATCH):
        with transaction(engine) as session:
            # Every batch re-sends the thread too, as a collector does: both processes update that row.
            Writer(session, privacy, Pseudonymiser(b"k")).write(COMMUNITY, [thread()], comments(BATCH, first=start))
    print(time.time(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
