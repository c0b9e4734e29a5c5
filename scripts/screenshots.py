"""Screenshots of every dashboard page: serves the app on loopback against a seeded store it builds (plus an
empty and an uninitialised one), or against the store of a configuration (--config, e.g. the demo's
civmon-demo.toml), and photographs each page with headless Chromium.

    .venv/bin/python scripts/screenshots.py [--out screenshots] [--chromium /usr/bin/chromium]
    .venv/bin/python scripts/screenshots.py --config civmon-demo.toml --out screenshots/demo

Chromium: `apt-get install -y chromium` (Debian). Writes one PNG per page into --out.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import websocket  # noqa: E402  (websocket-client, installed with streamlit)
from sqlalchemy import func, select  # noqa: E402

from monitor.config import load_settings  # noqa: E402
from monitor.store import schema  # noqa: E402
from monitor.store.db import make_engine  # noqa: E402
from monitor.store.models import Comment, Community, Thread  # noqa: E402

import dashboard_seed  # noqa: E402

WIDTH = 1400
# (file name, URL path and query, window height: Streamlit scrolls inside the page, so long pages need tall windows)
PAGES = [
    ("1-overview", "", 1200),
    ("2a-community-trends", "community?community=reddit/seeded", 2000),
    ("2b-community-distribution", "community?community=reddit/seeded&view=Distribution", 1400),
    ("2c-community-escalation", "community?community=reddit/seeded&view=Escalation", 1800),
    ("2d-community-threads", "community?community=reddit/seeded&view=Threads%20and%20comments", 1800),
    ("2e-community-hourly", "community?community=reddit/seeded&period=Last%207%20days&bucket=hour", 1300),
    ("3-compare", "compare", 1500),
    ("4-thread", "thread?thread={derail}", 2400),
    ("5-alerts", "alerts", 1200),
    ("6-health", "health", 2200),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(folder: Path, url: str) -> None:
    lines = [f'[database]\nurl = "{url}"\n']
    for ref, tz in dashboard_seed.TIMEZONES.items():
        lines.append(f'[[communities]]\nplatform = "{ref.platform}"\nname = "{ref.name}"\ntimezone = "{tz}"\n')
    (folder / "civmon.toml").write_text("\n".join(lines))


@contextmanager
def serve(folder: Path, config: Path, log_path: Path) -> Iterator[str]:
    """`streamlit run dashboard/app.py` in `folder` (its working folder) with `config`, on loopback."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVMON_")}
    env["CIVMON_CONFIG"] = str(config.resolve())
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "dashboard" / "app.py"),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    log = log_path.open("w")
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline or process.poll() is not None:
                raise RuntimeError(f"streamlit did not start: see {log_path}")
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


class Browser:
    """Headless Chromium driven over the DevTools protocol: load a page, wait until Streamlit has finished the
    script run and the charts have drawn, then capture (a fixed --screenshot cannot wait for the websocket)."""

    def __init__(self, chromium: str, profile: str) -> None:
        port = free_port()
        self.process = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={WIDTH},1000",
                f"--remote-debugging-port={port}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as answer:
                    targets = [t for t in json.load(answer) if t["type"] == "page"]
                if targets:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("chromium did not start")
            time.sleep(0.3)
        self.socket = websocket.create_connection(targets[0]["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> object:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def shoot(self, url: str, out: Path, height: int, timeout_s: float = 60) -> None:
        window = self.call("Browser.getWindowForTarget")["windowId"]
        self.call("Browser.setWindowBounds", windowId=window, bounds={"width": WIDTH, "height": height})
        self.call("Page.navigate", url=url)
        time.sleep(1.0)
        deadline, settled = time.time() + timeout_s, 0
        while time.time() < deadline:
            if self.evaluate(READY):
                settled += 1
                if settled >= 4:  # ready for two seconds in a row: charts drawn, nothing running
                    break
            else:
                settled = 0
            time.sleep(0.5)
        else:
            print(f"  {out.name}: page still busy after {timeout_s:.0f} s; capturing anyway")
        data = self.call("Page.captureScreenshot", format="png")["data"]
        out.write_bytes(base64.b64decode(data))
        print(f"{out} ({out.stat().st_size:,} bytes)")

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(10)


# Streamlit is done when the script has run (no "running" status widget, an element in the main block) and
# every Vega chart has drawn its canvas or SVG.
READY = """(() => {
  const main = document.querySelector('[data-testid="stMainBlockContainer"]');
  if (!main || !main.querySelector('[data-testid="stElementContainer"]')) return false;
  if (document.querySelector('[data-testid="stStatusWidget"] [data-testid="stStatusWidgetRunningIcon"]')) return false;
  if (document.querySelector('[data-testid="stSkeleton"]')) return false;
  const charts = document.querySelectorAll('[data-testid="stVegaLiteChart"]');
  for (const chart of charts) { if (!chart.querySelector('canvas, svg')) return false; }
  return true;
})()"""


def shoot_seeded(browser: Browser, folder: Path, out: Path, wanted) -> None:  # type: ignore[no-untyped-def]
    """The seeded store's pages (comments up to yesterday), then an empty and an uninitialised store."""
    stores = {name: folder / name for name in ("seeded", "empty", "missing")}
    for path in stores.values():
        path.mkdir()
    urls = {name: f"sqlite:///{path / 'civmon.db'}" for name, path in stores.items()}
    engine = make_engine(urls["seeded"])
    schema.upgrade(engine)
    today = int(time.time()) // 86_400 * 86_400
    # Comments up to yesterday (periods end there), collection runs up to an hour ago.
    dashboard_seed.build(engine, last_day=today - 86_400, runs_until=int(time.time()) - 3600)
    with engine.connect() as connection:
        derail = connection.scalar(select(Thread.id).where(Thread.platform_id == dashboard_seed.DERAIL_THREAD))
    engine.dispose()
    empty = make_engine(urls["empty"])  # initialised, nothing collected; "missing" is never initialised
    schema.upgrade(empty)
    empty.dispose()
    for name, path in stores.items():
        write_config(path, urls[name])
    with serve(stores["seeded"], stores["seeded"] / "civmon.toml", out / "streamlit.log") as base:
        for name, path, height in PAGES:
            if wanted(name):
                browser.shoot(f"{base}/{path.format(derail=derail)}", out / f"{name}.png", height)
    # The messages that replace a page: an initialised but empty store, and one never initialised.
    for name, store in (("7-empty", "empty"), ("8-uninitialised", "missing")):
        if wanted(name):
            with serve(stores[store], stores[store] / "civmon.toml", out / "streamlit.log") as base:
                browser.shoot(f"{base}/", out / f"{name}.png", 900)


def shoot_config(browser: Browser, config: Path, out: Path, wanted) -> None:  # type: ignore[no-untyped-def]
    """Every page of the store `config` names, served from the configuration's folder (where a relative SQLite
    path points): each community's views, and each community's largest thread."""
    engine = make_engine(load_settings(config).database.url)
    with engine.connect() as connection:
        communities = connection.execute(select(Community.platform, Community.name).order_by(Community.id)).all()
        largest = connection.execute(
            select(Community.name, Thread.id)
            .join(Thread, Thread.community_id == Community.id)
            .join(Comment, Comment.thread_id == Thread.id)
            .group_by(Community.name, Thread.id)
            .order_by(func.count().desc())
        ).all()
    engine.dispose()
    threads = {}
    for name, thread_id in largest:
        threads.setdefault(name, thread_id)
    pages = [("1-overview", "", 1200)]
    for platform, name in communities:
        key = f"community={platform}/{name}"
        pages += [
            (f"2-{name}-trends", f"community?{key}", 2000),
            (f"2-{name}-distribution", f"community?{key}&view=Distribution", 1400),
            (f"2-{name}-escalation", f"community?{key}&view=Escalation", 1800),
            (f"2-{name}-threads", f"community?{key}&view=Threads%20and%20comments", 1800),
        ]
        if name in threads:
            pages.append((f"4-{name}-thread", f"thread?thread={threads[name]}", 2400))
    pages += [("3-compare", "compare", 1500), ("4-thread-picker", "thread", 1400), ("5-alerts", "alerts", 1200)]
    pages.append(("6-health", "health", 2200))
    with serve(config.resolve().parent, config, out / "streamlit.log") as base:
        for name, path, height in pages:
            if wanted(name):
                browser.shoot(f"{base}/{path}", out / f"{name}.png", height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--config", type=Path, help="shoot the store of this configuration instead of a seeded one")
    parser.add_argument("--only", nargs="*", help="file-name prefixes of the pages to take (default: all)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = lambda name: not args.only or any(name.startswith(p) for p in args.only)  # noqa: E731
    with tempfile.TemporaryDirectory() as scratch:
        browser = Browser(args.chromium, str(Path(scratch) / "profile"))
        try:
            if args.config is not None:
                shoot_config(browser, args.config, args.out, wanted)
            else:
                shoot_seeded(browser, Path(scratch), args.out, wanted)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
