"""Dashboard speed: time to render the Overview and a Community page (Streamlit AppTest, cold cache) on stores
of two sizes, built with the rollup benchmark's fixture (the goal: the larger within 2x of the smaller).

Runs the real app script (dashboard/app.py in a source checkout) against a SQLite store; every timed render
starts with st.cache_data cleared, so each query runs. Pages read rollups for aggregates, so their time should
track the size of the period shown rather than the size of the store. The Community page opens on its trends;
its other tabs (distribution, escalation, threads and comments) compute when opened and are timed the same way.

    .venv/bin/python -m monitor.bench.dashboard
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import chdir, contextmanager
from pathlib import Path
from unittest import mock

from monitor.bench.rollups import MODEL, prepare
from monitor.metrics.rollups import rebuild
from monitor.store.db import make_engine

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
COMMUNITY = "reddit/bench1"


@contextmanager
def _pointed_at(url: str, folder: Path) -> Iterator[None]:
    """The app's environment: this database, this working folder (no civmon.toml: defaults)."""
    environment = {k: v for k, v in os.environ.items() if k != "CIVMON_CONFIG"} | {"CIVMON_DATABASE__URL": url}
    with mock.patch.dict(os.environ, environment, clear=True), chdir(folder):
        yield


def _render(page: str | None, query: dict[str, str] | None = None) -> float:
    """Seconds for one cold render of a page (the app script, then the page)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=600)
    at.query_params.update(query or {})
    if page is not None:  # reach the page first, then time its own run from a cold cache
        at.run()
        at.switch_page(page)
    st.cache_data.clear()
    start = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"{page or 'overview'} failed: {at.exception[0].value}")
    problems = [e.value for e in at.error]
    if problems:
        raise RuntimeError(f"{page or 'overview'} shows an error: {problems[0]}")
    return elapsed


VIEWS = ("Distribution", "Escalation", "Threads and comments")  # the Community page's other tabs, computed on opening


def _timings(url: str, folder: Path, repeats: int) -> dict[str, float]:
    logging.disable(logging.WARNING)  # AppTest outside a server warns about the missing runtime at every call
    try:
        with _pointed_at(url, folder):
            _render(None)  # imports, engine and first connection: not part of a page's time
            times = {
                "Overview": statistics.median(_render(None) for _ in range(repeats)),
                "Community": statistics.median(
                    _render("views/community.py", {"community": COMMUNITY}) for _ in range(repeats)
                ),
            }
            for view in VIEWS:
                times[view] = statistics.median(
                    _render("views/community.py", {"community": COMMUNITY, "view": view}) for _ in range(repeats)
                )
    finally:
        logging.disable(logging.NOTSET)
    return times


def report(sizes: tuple[int, ...] = (10_000, 1_000_000), repeats: int = 3) -> str:
    lines = []
    results: dict[int, dict[str, float]] = {}
    for size in sizes:
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            url = f"sqlite:///{folder / 'bench.db'}"
            engine = make_engine(url)
            started = time.perf_counter()
            prepare(engine, size)
            rebuild(engine, MODEL)
            built = time.perf_counter() - started
            engine.dispose()
            times = results[size] = _timings(url, folder, repeats)
            lines.append(
                f"  {size:>9,} comments: Overview {times['Overview']:5.2f} s, Community {times['Community']:5.2f} s"
                f"   (store built in {built:,.0f} s)"
            )
            lines.append(
                "                      other Community tabs, on opening: "
                + ", ".join(f"{view} {times[view]:.2f} s" for view in VIEWS)
            )
    small, large = min(sizes), max(sizes)
    if small != large:
        ratio = {name: results[large][name] / results[small][name] for name in results[large]}
        verdict = "within" if max(ratio["Overview"], ratio["Community"]) <= 2 else "NOT within"
        lines.append(
            f"  {large:,} / {small:,}: Overview x{ratio['Overview']:.2f}, Community x{ratio['Community']:.2f} "
            f"({verdict} the 2x goal); tabs: " + ", ".join(f"{view} x{ratio[view]:.2f}" for view in VIEWS)
        )
    return (
        f"dashboard render on SQLite (AppTest, cold st.cache_data, median of {repeats}; 3 communities, rollup-bench "
        f"fixture; Community = {COMMUNITY}, last 28 days by day, its first tab):\n" + "\n".join(lines)
    )


if __name__ == "__main__":
    print(report())
