"""A real `civmon serve` process on a loopback port, for the API tests: its own folder, store, key file and log."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from conftest import CIVMON, TEST_KEY, command_env

STARTUP_S = 180  # the model loads and, on a new machine, its int8 runtime is built (about a minute on 2 cores)


@dataclass
class Server:
    url: str
    folder: Path
    process: subprocess.Popen[str]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_config(folder: Path, db_url: str, extra: str = "") -> Path:
    (folder / "civmon.key").write_bytes(TEST_KEY)
    (folder / "civmon.key").chmod(0o600)
    config = folder / "civmon.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n{extra}', encoding="utf-8")
    return config


@contextmanager
def running_server(folder: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """`civmon serve ARGS` in `folder` (configured and initialised), until the block ends."""
    port = free_port()
    log = folder / "serve.log"
    with log.open("w", encoding="utf-8") as sink:
        process = subprocess.Popen(
            [*CIVMON, "serve", "--port", str(port), *args],
            cwd=folder,
            env=command_env(**(env or {})),
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = Server(f"http://127.0.0.1:{port}", folder, process, log)
    try:
        _wait_until_healthy(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"civmon serve exited with {server.process.returncode}:\n{server.log_text()}")
        try:
            if requests.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"civmon serve did not answer within {STARTUP_S} s:\n{server.log_text()}")
