"""What every page shares: finding the database, the messages that replace an empty page, periods, formats."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from dashboard import queries
from monitor.config import ConfigError, Settings, load_settings
from monitor.errors import CivmonError
from monitor.metrics.definitions import METRICS, shown
from monitor.metrics.rollups import BUCKETS, bucket_start
from monitor.store.db import display_url

DAY = 86_400
AS_OF = "as_of_day"  # session key: the last UTC day the pages show (shared by every page); empty: each its own
LATEST = "Latest data"  # the default period: the page's usual length, longer where that holds too little
PERIODS = {"Last 7 days": 7, "Last 28 days": 28, "Last 90 days": 90, "Last 365 days": 365, "All data": None}
MAX_HOURLY_DAYS = 31
NO_NUMBER = "—"  # a tile or cell without a number; its help or the page says why

# CommonMark's backslash-escapable characters: escaped, each renders as itself, so no link, image, HTML, code,
# emphasis, math ($) or directive (:red[...]) can start.
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
# Streamlit and remark-gfm also rewrite the parsed text itself, where escapes are already undone: :material/x:,
# :streamlit: and emoji shortcodes (a colon before a word), bare URLs (http:, www.) and e-mail addresses (@).
# An invisible word joiner after ":" and "@" and before "." leaves none of those patterns in the text.
_TEXT_PATTERNS = re.compile(r"(?<=[:@])|(?=\.)")
WORD_JOINER = "\u2060"
# Bidirectional embeddings, overrides, isolates and marks: a title with U+202E shows its text reversed ("gnp.exe"
# reads as "exe.png") and runs on into what follows it, so they are dropped.
BIDI_CONTROLS = dict.fromkeys([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
# and control characters (a grid shows them as boxes): spaces, which the one-line text then collapses
_HIDDEN = BIDI_CONTROLS | dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)], " ")


def one_line(text: object) -> str:
    """Text from the internet as a widget that takes no Markdown shows it (a table's cell, a selectbox's option):
    on one line, with no control character, and no bidirectional control to reverse it or what follows it."""
    return " ".join(str(text).translate(_HIDDEN).split())


def plain(text: object) -> str:
    """Text from the internet or a user (titles, names, pseudonyms, error texts) as Markdown that shows exactly
    that text, on one line: the one way such text reaches any Markdown element (markdown, title, caption, metric,
    error, help)."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", _TEXT_PATTERNS.sub(WORD_JOINER, one_line(text)))


def clipped(text: str, chars: int) -> str:
    """At most `chars` characters of `text`, an ellipsis saying where it was cut."""
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"


def change(value: float, percent: bool) -> tuple[str, bool]:
    """A change as a metric's delta shows it, and whether it rounds to nothing: then no sign, arrow or colour
    (a "-0.00" in red would report rounding noise as a fall)."""
    text = f"{100 * value:+.1f} pts" if percent else f"{value:+.2f}"
    steady = float(text.removesuffix(" pts")) == 0
    return ("±" + text[1:] if steady else text), steady


def text_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as a table shows it: its text cells `one_line` (numbers, times and empty cells as they are)."""
    texts = frame.select_dtypes(include=["object", "string"]).columns
    return frame.assign(**{c: frame[c].map(lambda v: one_line(v) if isinstance(v, str) else v) for c in texts})


def page_link(page: str, **params: object) -> str:
    """A link to another page of the app with its query parameters percent-encoded (names come from the internet:
    a ")" or "&" in one must not end the link or add a parameter)."""
    return f"{page}?{urlencode(params)}"


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
    """Markdown message and what to do (callers pass outside text through plain()), then the page stops."""
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
        st.error(plain(exc.message), icon=":material/error:")
        _stop_hint(exc)
    raise AssertionError("unreachable")


def _stop_hint(exc: CivmonError) -> None:
    show_hint(exc)
    st.stop()


def show_hint(exc: CivmonError) -> None:
    if exc.hint:
        st.markdown(f"**What to do:** {hint_markdown(exc.hint)}")


def hint_markdown(hint: str) -> str:
    """A hint as one Markdown sentence: commands as code, one final period (hints are written with or without)."""
    return with_code(hint.rstrip(".") + ".")


def with_code(hint: str) -> str:
    """A hint's text as Markdown: its `commands` as code, as the command line's hints write them, and the rest
    plain (a hint may quote a path or a URL). Unpaired backticks: all of it plain."""
    parts = hint.split("`")
    if len(parts) % 2 == 0:
        return plain(hint)
    return "".join(_plain_spaced(part) if i % 2 == 0 else f"`{one_line(part)}`" for i, part in enumerate(parts))


def _plain_spaced(part: str) -> str:
    """plain(part) with the space before and after it kept (plain() trims it: "run " + code would run on)."""
    return (" " if part[:1].isspace() else "") + plain(part) + (" " if part[-1:].isspace() and part.strip() else "")


def show_error(exc: CivmonError) -> None:
    st.error(plain(exc.message), icon=":material/error:")
    show_hint(exc)


def reason(exc: Exception) -> str:
    """A database error's first line (the driver's message, which may quote stored text)."""
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def context(require: str = "rollups") -> Context:
    """Settings, database and store state, or a message saying what to run (and the page stops there).

    require: "store" (a reachable, initialised database), "communities", "scores" or "rollups".
    """
    s = settings()
    url = s.database.url
    try:
        state = queries.store_state(url)
    except CivmonError as exc:
        _stop(f"Cannot open the database: {plain(exc.message)}", hint_markdown(exc.hint) if exc.hint else None)
    except SQLAlchemyError as exc:
        _stop(
            f"The database {plain(display_url(url))} could not be read: {plain(reason(exc))}",
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
            f"Scores from model {plain(state.version)} exist, but their rollups are not built yet.",
            "run `civmon metrics` (the scheduler runs it after each scoring pass).",
            level="info",
        )
    return ctx


def guarded(page) -> None:  # type: ignore[no-untyped-def]
    """Run a page; a database error mid-page becomes a message, not a traceback."""
    try:
        page()
    except CivmonError as exc:
        show_error(exc)
    except SQLAlchemyError as exc:
        st.error(f"The database could not be read: {plain(reason(exc))}", icon=":material/error:")
        st.markdown("**What to do:** check `civmon status`; if the schema changed, run `civmon init`.")


# --- periods --------------------------------------------------------------------------------------------------


def day_start(epoch: int) -> int:
    return epoch - epoch % DAY


def as_date(epoch: int) -> date:
    return datetime.fromtimestamp(epoch, UTC).date()


def epoch_of(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def today() -> int:
    return day_start(queries.now())


def day_chosen() -> date | None:
    """The day chosen in the sidebar's "data up to", if any."""
    chosen = st.session_state.get(AS_OF)
    return chosen if isinstance(chosen, date) else None


def end_day(ctx: Context, communities: Sequence[queries.CommunityInfo]) -> int:
    """The last UTC day a page shows for these communities (start of that day): the day chosen in the sidebar, else
    their newest day with data. Each community is measured against its own newest data, so one whose data stop
    years ago (recorded traffic, an archive) still shows them; the sidebar says how old they are."""
    if (chosen := day_chosen()) is not None:
        return min(epoch_of(chosen), today())
    days = [c.last_day for c in communities if c.last_day is not None]
    return min(max(days, default=ctx.state.last_day or today()), today())


def measured_to(ctx: Context, communities: Sequence[queries.CommunityInfo], last: int) -> str:
    """Markdown: where the periods end, and why there."""
    if day_chosen() is not None:
        return f"Periods end on {as_date(last):%d %b %Y}, the day chosen in the sidebar."
    whose = plain(communities[0].label) + "'s" if len(communities) == 1 else "these communities'"
    return f"Measured up to {whose} newest data, {as_date(last):%d %b %Y}."


def sidebar_as_of(state: queries.StoreState) -> None:
    """The shared "data up to" control (rendered by app.py on every page, so its value survives page changes)."""
    if state.last_day is None or state.first_day is None:
        return
    st.sidebar.date_input(
        "Show data up to (UTC day)",
        value=None,
        min_value=as_date(state.first_day),
        max_value=as_date(max(state.last_day, today())),
        key=AS_OF,
        help="Empty: each community up to its own newest day with data. Choose a day to end every period there.",
    )
    if day_chosen() is None:
        st.sidebar.caption("Empty: each community up to its own newest data.")
    stale_days = (today() - state.last_day) // DAY
    if stale_days >= 2:
        st.sidebar.warning(
            f"The newest data is from {as_date(state.last_day):%d %b %Y}, {stale_days:,} days ago. "
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


def latest_span(ctx: Context, communities: Sequence[queries.CommunityInfo], last: int, days: int) -> int | None:
    """Days in the "Latest data" period ending on `last`: `days`, or the shortest longer period in which every
    community with data has the scored comments a number needs; None: all the data."""
    need = METRICS["hostility"].min_sample
    with_data = [c for c in communities if c.last_day is not None]
    for span in (d for d in PERIODS.values() if d is not None and d >= days):
        since = last - (span - 1) * DAY
        stats = (queries.period_stats(ctx.url, c.id, ctx.version, since, last + DAY) for c in with_data)
        if all(s.scored >= need for s in stats):
            return span
    return None


def _span_label(span: int | None) -> str:
    return "all the data" if span is None else f"the last {span} days"


def period_picker(
    ctx: Context, key: str, communities: Sequence[queries.CommunityInfo], days: int = 28, bucket: bool = True
) -> Period:
    """Period (ending on the communities' newest day, or the sidebar's; or a custom range) and bucket controls, in
    one row, with a caption saying where the period ends and, for "Latest data", why it is longer than `days`. The
    period and bucket are kept in the URL (?period=...&bucket=...) so a view can be shared."""
    last = end_day(ctx, communities)
    first = min((c.first_day for c in communities if c.first_day is not None), default=ctx.state.first_day or last)
    columns = st.columns([2, 3, 2] if bucket else [2, 5], vertical_alignment="bottom")
    options = [LATEST, *PERIODS, "Custom range"]
    need = METRICS["hostility"].min_sample
    longer = ", ".join([*(f"{d} days" for d in PERIODS.values() if d is not None and d > days), "all"])
    choice = columns[0].selectbox(
        "Period",
        options,
        key="period",
        bind="query-params",
        help=f"{LATEST}: the last {days} days with data, or the shortest longer period ({longer}) in "
        f"which each community has the {need} scored comments a number needs.",
    )
    notes = [measured_to(ctx, communities, last)]
    if choice == "Custom range":
        picked = columns[1].date_input(
            "From – to (UTC days, inclusive)",
            value=(as_date(max(first, last - (days - 1) * DAY)), as_date(last)),
            min_value=as_date(min(first, last)),
            max_value=as_date(last),
            key=f"{key}-range",
        )
        start, stop = picked if isinstance(picked, tuple) and len(picked) == 2 else (picked[0], picked[0])
        since, until = epoch_of(start), epoch_of(stop) + DAY
    else:
        span = latest_span(ctx, communities, last, days) if choice == LATEST else PERIODS[choice]
        if choice == LATEST and span != days:
            notes.append(
                f"The last {days} days hold fewer than {need} scored comments"
                + ("" if len(communities) == 1 else " in some of them")
                + f": showing {_span_label(span)}."
            )
        since = min(first, last) if span is None else last - (span - 1) * DAY
        until = last + DAY
        columns[1].markdown(f"{fmt_range(since, until)} (UTC days)")
    st.caption(" ".join(notes))
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
    """ "0.42", or a dash below the metric's minimum sample (a tile's value must fit it: its help says why)."""
    if estimate is None or not shown(metric, sample):
        return NO_NUMBER
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
    """A community selector kept in the URL (?community=platform/name), so a page can be linked to (a selectbox's
    options are plain text, unlike its label)."""
    by_key = {c.key: c for c in ctx.state.communities}
    if (asked := st.query_params.get("community")) is not None and asked not in by_key:  # a typo, a renamed one
        st.warning(f"No community {plain(asked)} in the database: choose one below.", icon=":material/warning:")
    chosen = where.selectbox("Community", list(by_key), key="community", bind="query-params")
    return by_key[chosen]
