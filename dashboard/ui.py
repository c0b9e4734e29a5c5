"""What every page shares: finding the database, the messages that replace an empty page, periods, formats."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from dashboard import queries
from monitor.config import ConfigError, Settings, load_settings
from monitor.errors import CivmonError
from monitor.metrics.definitions import METRICS, shown
from monitor.metrics.rollups import BUCKETS, bucket_start
from monitor.store.db import display_url

DAY = 86_400
AS_OF = "as_of_day"  # session key: the last UTC day the pages show (shared by every page)
PERIODS = {"Last 7 days": 7, "Last 28 days": 28, "Last 90 days": 90, "Last 365 days": 365, "All data": None}
MAX_HOURLY_DAYS = 31


@dataclass(frozen=True)
class Context:
    settings: Settings
    url: str
    state: queries.StoreState

    def tz(self, community: queries.CommunityInfo) -> str:
        """The community's display time zone (settings.communities), UTC where not configured."""
        for c in self.settings.communities:
            if c.platform == community.platform and c.name == community.name:
                return c.timezone
        return "UTC"

    @property
    def version(self) -> str:
        assert self.state.version is not None
        return self.state.version

    @property
    def threshold(self) -> float:
        return self.state.threshold if self.state.threshold is not None else 0.5


def _stop(message: str, todo: str | None = None, *, level: str = "error") -> None:
    (st.error if level == "error" else st.info)(
        message, icon=":material/error:" if level == "error" else ":material/info:"
    )
    if todo:
        st.markdown(f"**What to do:** {todo}")
    st.stop()


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        st.error("The configuration has problems, so the dashboard cannot start.", icon=":material/error:")
        st.code("\n".join(str(p) for p in exc.problems), language=None)
        _stop_hint(exc)
    except CivmonError as exc:
        st.error(exc.message, icon=":material/error:")
        _stop_hint(exc)
    raise AssertionError("unreachable")


def _stop_hint(exc: CivmonError) -> None:
    if exc.hint:
        st.markdown(f"**What to do:** {exc.hint}.")
    st.stop()


def context(require: str = "rollups") -> Context:
    """Settings, database and store state, or a message saying what to run (and the page stops there).

    require: "store" (a reachable, initialised database), "communities", "scores" or "rollups".
    """
    s = settings()
    url = s.database.url
    try:
        state = queries.store_state(url)
    except CivmonError as exc:
        _stop(f"Cannot open the database: {exc.message}", f"{exc.hint}." if exc.hint else None)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        _stop(
            f"The database {display_url(url)} could not be read: {reason}",
            "check that it is reachable, then run `civmon init` (safe to run again) and `civmon status`.",
        )
    ctx = Context(s, url, state)
    if require == "store":
        return ctx
    if not state.communities:
        _stop(
            "No communities yet: the database is initialised but holds nothing.",
            "add `[[communities]]` to civmon.toml, run `civmon init` to register them, then `civmon collect` "
            "(or `civmon import FILE` for dumps), `civmon score` and `civmon metrics`.",
            level="info",
        )
    if require == "communities":
        return ctx
    if state.version is None and not state.has_comments:
        _stop(
            "No comments yet: the communities are registered, but nothing has been collected.",
            "run `civmon collect` (or `civmon import FILE` for dumps), then `civmon score` and `civmon metrics`.",
            level="info",
        )
    if state.version is None:
        _stop(
            "No scores yet: comments are stored, but no model has scored them.",
            "run `civmon score`, then `civmon metrics`.",
            level="info",
        )
    if require == "scores":
        return ctx
    if state.last_day is None:
        _stop(
            f"Scores from model {state.version} exist, but their rollups are not built yet.",
            "run `civmon metrics` (the scheduler runs it after each scoring pass).",
            level="info",
        )
    return ctx


def guarded(page) -> None:  # type: ignore[no-untyped-def]
    """Run a page; a database error mid-page becomes a message, not a traceback."""
    try:
        page()
    except CivmonError as exc:
        st.error(exc.message, icon=":material/error:")
        if exc.hint:
            st.markdown(f"**What to do:** {exc.hint}")
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        st.error(f"The database could not be read: {reason}", icon=":material/error:")
        st.markdown("**What to do:** check `civmon status`; if the schema changed, run `civmon init`.")


# --- periods --------------------------------------------------------------------------------------------------


def day_start(epoch: int) -> int:
    return epoch - epoch % DAY


def as_date(epoch: int) -> date:
    return datetime.fromtimestamp(epoch, UTC).date()


def epoch_of(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def default_end_day(state: queries.StoreState) -> int:
    """The newest day with data (not later than today): a stopped collector shows its last data, flagged."""
    assert state.last_day is not None
    return min(state.last_day, day_start(queries.now()))


def end_day(ctx: Context) -> int:
    """The last UTC day the pages show (start of that day), from the sidebar."""
    chosen = st.session_state.get(AS_OF)
    latest = default_end_day(ctx.state)
    if isinstance(chosen, date):
        return min(epoch_of(chosen), max(latest, day_start(queries.now())))
    return latest


def sidebar_as_of(state: queries.StoreState) -> None:
    """The shared "data up to" control (rendered by app.py on every page, so its value survives page changes)."""
    if state.last_day is None or state.first_day is None:
        return
    latest = default_end_day(state)
    st.sidebar.date_input(
        "Show data up to (UTC day)",
        value=as_date(latest),
        min_value=as_date(state.first_day),
        max_value=as_date(max(latest, day_start(queries.now()))),
        key=AS_OF,
        help="Periods end with this day. It starts at the newest day with data.",
    )
    stale_days = (day_start(queries.now()) - state.last_day) // DAY
    if stale_days >= 2:
        st.sidebar.warning(
            f"The newest data is from {as_date(state.last_day):%d %b %Y}, {stale_days} days ago. "
            "Is collection running? See **Data health**.",
            icon=":material/schedule:",
        )


@dataclass(frozen=True)
class Period:
    since: int
    until: int
    bucket: str
    label: str

    @property
    def days(self) -> int:
        return (self.until - self.since) // DAY


def period_picker(ctx: Context, key: str, default: str = "Last 28 days", bucket: bool = True) -> Period:
    """Period (relative to the shared end day, or a custom range) and bucket controls, in one row; the period and
    bucket are kept in the URL (?period=...&bucket=...) so a view can be shared."""
    last = end_day(ctx)
    first = ctx.state.first_day or last
    columns = st.columns([2, 3, 2] if bucket else [2, 5])
    options = [*PERIODS, "Custom range"]
    choice = columns[0].selectbox("Period", options, index=options.index(default), key="period", bind="query-params")
    if choice == "Custom range":
        picked = columns[1].date_input(
            "From – to (UTC days, inclusive)",
            value=(as_date(max(first, last - 27 * DAY)), as_date(last)),
            min_value=as_date(first),
            max_value=as_date(last),
            key=f"{key}-range",
        )
        start, stop = picked if isinstance(picked, tuple) and len(picked) == 2 else (picked[0], picked[0])
        since, until = epoch_of(start), epoch_of(stop) + DAY
    else:
        days = PERIODS[choice]
        since = first if days is None else last - (days - 1) * DAY
        until = last + DAY
        columns[1].markdown(
            f"<div style='padding-top:2.1rem'>{fmt_range(since, until)} (UTC days)</div>", unsafe_allow_html=True
        )
    chosen = "day"
    if bucket:
        chosen = (
            columns[2].segmented_control("Bucket", list(BUCKETS), default="day", key="bucket", bind="query-params")
            or "day"
        )
        if chosen == "hour" and (until - since) // DAY > MAX_HOURLY_DAYS:
            st.caption(f"Hourly buckets are offered for periods up to {MAX_HOURLY_DAYS} days: showing days.")
            chosen = "day"
        if chosen == "week":
            since = int(bucket_start(since, "week"))  # whole weeks: the one holding the first day, too
    return Period(since, until, chosen, choice)


def fmt_range(since: int, until: int) -> str:
    first, last = as_date(since), as_date(until - 1)
    if first == last:
        return f"{first:%d %b %Y}"
    return f"{first:%d %b %Y} – {last:%d %b %Y}"


# --- formats --------------------------------------------------------------------------------------------------


def fmt_estimate(estimate, metric: str, sample: int, percent: bool = False) -> str:  # type: ignore[no-untyped-def]
    """ "0.42 (0.38–0.46)", or the "not enough data" note below the metric's minimum sample."""
    if estimate is None or not shown(metric, sample):
        return "not enough data"
    f = (lambda v: f"{v:.1%}") if percent else (lambda v: f"{v:+.2f}" if metric == "alliance" else f"{v:.2f}")
    return f"{f(estimate.value)}"


def interval(estimate, metric: str, sample: int, percent: bool = False) -> str | None:  # type: ignore[no-untyped-def]
    if estimate is None or not shown(metric, sample):
        return None
    f = (lambda v: f"{v:.1%}") if percent else (lambda v: f"{v:.2f}")
    return f"95% interval {f(estimate.low)} – {f(estimate.high)}"


def not_enough(metric: str, sample: int) -> str:
    d = METRICS[metric]
    return f"Not enough data: {sample} {d.sample_of}, {d.min_sample} needed."


def fmt_time(epoch: int | None, tz: str = "UTC") -> str:
    if epoch is None:
        return "—"
    from dashboard.charts import local_time

    return f"{local_time(epoch, tz):%Y-%m-%d %H:%M}"


def fmt_ago(seconds: int | None) -> str:
    if seconds is None:
        return "never"
    td = timedelta(seconds=max(seconds, 0))
    if td < timedelta(minutes=1):
        return f"{td.seconds} s"
    if td < timedelta(hours=1):
        return f"{td.seconds // 60} min"
    if td < timedelta(days=2):
        return f"{td.total_seconds() / 3600:.1f} h"
    return f"{td.days} days"


def definitions_expander(metrics: list[str]) -> None:
    with st.expander("What these numbers mean", icon=":material/help:"):
        rows = "\n".join(
            f"| **{METRICS[m].title}** | {METRICS[m].meaning} | {METRICS[m].formula} | {METRICS[m].min_sample} "
            f"{METRICS[m].sample_of} |"
            for m in metrics
        )
        st.markdown("| metric | meaning | how it is computed | shown from |\n|---|---|---|---|\n" + rows)


def eval_file() -> Path:
    """The latest `civmon eval` report: $CIVMON_EVAL_DIR/eval.md, else civmon-eval/eval.md in the working folder."""
    folder = os.environ.get("CIVMON_EVAL_DIR")
    return Path(folder) / "eval.md" if folder else Path("civmon-eval") / "eval.md"


def pick_community(ctx: Context, where=st) -> queries.CommunityInfo:  # type: ignore[no-untyped-def]
    """A community selector kept in the URL (?community=platform/name), so a page can be linked to."""
    by_key = {c.key: c for c in ctx.state.communities}
    chosen = where.selectbox("Community", list(by_key), key="community", bind="query-params")
    return by_key[chosen]
