"""Overview: every community in one table, its latest week of data against its own baseline."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, queries, ui
from monitor.metrics.definitions import shown

NOW_DAYS, TREND_DAYS = 7, 35


def value(estimate, metric: str, sample: int) -> float | None:  # type: ignore[no-untyped-def]
    return estimate.value if estimate is not None and shown(metric, sample) else None


def windows(ctx: ui.Context) -> tuple[tuple[int, int, int], ...]:
    """Each community's "now": its last NOW_DAYS days with data, longer where they hold too few scored comments."""
    result = []
    for c in ctx.state.communities:
        last = ui.end_day(ctx, [c])
        span = ui.latest_span(ctx, [c], last, NOW_DAYS)
        since = min(c.first_day or last, last) if span is None else last - (span - 1) * ui.DAY
        result.append((c.id, since, last + ui.DAY))
    return tuple(result)


def period_text(since: int, until: int) -> str:
    days = (until - since) // ui.DAY
    return f"{days} day{'s' * (days != 1)} to {ui.as_date(until - 1):%d %b %Y}"


def table(summaries: list[queries.CommunitySummary]) -> pd.DataFrame:
    rows = []
    for s in summaries:
        alliance = value(s.now.alliance, "alliance", s.now.scored)
        alliance_base = value(s.baseline.alliance, "alliance", s.baseline.scored)
        share = value(s.now.hostile_share, "hostile_share", s.now.scored)
        share_base = value(s.baseline.hostile_share, "hostile_share", s.baseline.scored)
        rows.append(
            {
                "community": s.community.key,
                "period": period_text(s.since, s.until),
                "comments": s.now.comments,
                "scored": s.now.scored,  # not shown (the header sums it); the sample behind the estimates
                "alliance": alliance,
                "alliance_baseline": alliance_base,
                "alliance_change": None if alliance is None or alliance_base is None else alliance - alliance_base,
                "hostile_share": None if share is None else 100 * share,
                "hostile_share_baseline": None if share_base is None else 100 * share_base,
                "hostile_share_change": None if share is None or share_base is None else 100 * (share - share_base),
                # Days without a number (no data, or under the minimum sample) are left out: the chart column
                # cannot draw gaps; one point is no line.
                "trend": trend if len(trend := [round(v, 3) for v in s.trend if v is not None]) > 1 else None,
                "open_alerts": s.open_alerts,
                "page": ui.page_link("community", community=s.community.key),
            }
        )
    return pd.DataFrame(rows)


def page() -> None:
    st.title("Overview")
    ctx = ui.context()
    summaries = queries.overview(ctx.url, ctx.version, windows(ctx), TREND_DAYS)
    frame = table(summaries)
    st.caption(
        (
            "Periods end on the day chosen in the sidebar."
            if ui.day_chosen() is not None
            else "Each community is measured against its own newest data."
        )
        + f" **Now**: its last {NOW_DAYS} days (longer where those hold fewer than 10 scored comments: see "
        f"**Period**) · **baseline**: the {queries.BASELINE_FACTOR} times as long just before (UTC days) · model "
        f"{ui.plain(ctx.version)}"
    )
    open_alerts = int(frame["open_alerts"].sum())
    a, b, c, d = st.columns(4)
    a.metric("Communities", len(frame))
    b.metric("Comments in period", f"{int(frame['comments'].sum()):,}", help="Summed over each row's period.")
    c.metric("Scored in period", f"{int(frame['scored'].sum()):,}", help="Summed over each row's period.")
    d.metric("Open alerts", open_alerts, help="Spike alerts not yet acknowledged: see the Alerts page.")

    number = st.column_config.NumberColumn
    selection = st.dataframe(
        ui.text_cells(frame),
        hide_index=True,
        key="overview-table",
        on_select="rerun",
        selection_mode="single-row",
        placeholder=ui.NO_NUMBER,
        column_order=[
            "community",
            "period",
            "comments",
            "alliance",
            "alliance_baseline",
            "alliance_change",
            "hostile_share",
            "hostile_share_baseline",
            "hostile_share_change",
            "trend",
            "open_alerts",
            "page",
        ],
        column_config={
            "community": st.column_config.TextColumn("Community", pinned=True, width=145),
            "period": st.column_config.TextColumn(
                "Period", width=150, help="The row's period: its last days with data, up to its newest day."
            ),
            "comments": number("Comments", format="localized", width=76, help="Comments in the period."),
            "alliance": number(
                "Alliance",
                format="%+.2f",
                width=62,
                help="Alliance index in the period. " + charts.definition_help("alliance"),
            ),
            "alliance_baseline": number(
                "baseline", format="%+.2f", width=62, help="Alliance index over the baseline, before the period."
            ),
            "alliance_change": number(
                "Δ", format="%+.2f", width=48, help="Alliance now minus baseline: below 0, the tone got worse."
            ),
            "hostile_share": number(
                "Hostile",
                format="%.1f%%",
                width=62,
                help="Hostile share in the period. " + charts.definition_help("hostile_share"),
            ),
            "hostile_share_baseline": number(
                "baseline", format="%.1f%%", width=62, help="Hostile share over the baseline, before the period."
            ),
            "hostile_share_change": number(
                "Δ pts", format="%+.1f", width=52, help="Hostile share now minus baseline, in percentage points."
            ),
            "trend": st.column_config.LineChartColumn(
                "Alliance, daily",
                width=84,
                help=f"Daily alliance index over the row's last {TREND_DAYS} days (or its period, if longer), days "
                "with enough data only (each row on its own scale).",
            ),
            "open_alerts": number("Alerts", width=50, help="Open (unacknowledged) alerts."),
            "page": st.column_config.LinkColumn("", display_text="open ›", width=52),
        },
    )
    st.caption(
        f"Δ: now minus baseline. {ui.NO_NUMBER}: fewer than 10 scored comments, not enough data for a number. Sort "
        "by clicking a column header; select a row (or **open ›**) for the community's page."
    )
    rows = selection.selection.rows if selection is not None else []
    if rows:
        st.switch_page("views/community.py", query_params={"community": frame.iloc[rows[0]]["community"]})
    ui.definitions_expander(["alliance", "hostile_share"])


ui.guarded(page)
