"""`civmon run` with `[scoring] workers = N`: N `civmon score --worker` child processes in place of the
scheduler's score job. One that exits (a crash, the OOM killer) is started again, at most every
RESTART_S seconds; on shutdown each gets SIGTERM and finishes the batch it holds."""

from __future__ import annotations

import logging
import subprocess
import sys
import time

log = logging.getLogger(__name__)
RESTART_S = 10.0
STOP_TIMEOUT_S = 120.0  # a worker finishes its batch first: the default 256 comments take seconds


class WorkerPool:
    def __init__(self, count: int, config: str | None, threads: int) -> None:
        self.command = [sys.executable, "-m", "monitor", "score", "--worker", "--threads", str(threads)]
        if config:
            self.command += ["--config", config]
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * count
        self.started = [-RESTART_S] * count

    def check(self) -> None:
        """Start the workers not running (all of them the first time)."""
        for slot, process in enumerate(self.processes):
            if process is not None:
                if process.poll() is None:
                    continue
                log.error("scoring worker %d (pid %d) exited with status %d", slot, process.pid, process.returncode)
                self.processes[slot] = None
            if time.monotonic() - self.started[slot] < RESTART_S:
                continue  # one that dies at once (a bad model, the database gone) is not restarted in a loop
            started = subprocess.Popen(self.command)  # its log lines join this process's
            self.processes[slot], self.started[slot] = started, time.monotonic()
            log.info("scoring worker %d started: pid %d", slot, started.pid)

    def stop(self) -> None:
        running = [p for p in self.processes if p is not None and p.poll() is None]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("scoring worker pid %d did not stop in %.0f s; killed", process.pid, STOP_TIMEOUT_S)
                process.kill()
                process.wait()
        log.info("%d scoring workers stopped", len(running))
