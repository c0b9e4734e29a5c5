"""Overview: every community in one table, this week against its own baseline."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, queries, ui
from monitor.metrics.definitions import shown

NOW_DAYS, BASELINE_DAYS, TREND_DAYS = 7, 28, 35


def value(estimate, metric: str, sample: int) -> float | None:  # type: ignore[no-untyped-def]
    return estimate.value if estimate is not None and shown(metric, sample) else None


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
                "comments": s.now.comments,
                "scored": s.now.scored,  # not shown (the header sums it); the sample behind the estimates
                "alliance": alliance,
                "alliance_baseline": alliance_base,
                "alliance_change": None if alliance is None or alliance_base is None else alliance - alliance_base,
                "hostile_share": None if share is None else 100 * share,
                "hostile_share_baseline": None if share_base is None else 100 * share_base,
                "hostile_share_change": None if share is None or share_base is None else 100 * (share - share_base),
                # Days without a number (no data, or under the minimum sample) are left out: the chart column
                # cannot draw gaps.
                "trend": [round(v, 3) for v in s.trend if v is not None] or None,
                "open_alerts": s.open_alerts,
                "page": f"community?community={s.community.key}",
            }
        )
    return pd.DataFrame(rows)


def page() -> None:
    st.title("Overview")
    ctx = ui.context()
    last = ui.end_day(ctx)
    until = last + ui.DAY
    since = until - NOW_DAYS * ui.DAY
    baseline_since = since - BASELINE_DAYS * ui.DAY
    st.caption(
        f"**Now**: the last {NOW_DAYS} days, {ui.fmt_range(since, until)} · **baseline**: the {BASELINE_DAYS} days "
        f"before, {ui.fmt_range(baseline_since, since)} (UTC days) · model `{ctx.version}`"
    )
    summaries = queries.overview(ctx.url, ctx.version, since, until, baseline_since, until - TREND_DAYS * ui.DAY)
    frame = table(summaries)
    open_alerts = int(frame["open_alerts"].sum())
    a, b, c, d = st.columns(4)
    a.metric("Communities", len(frame))
    b.metric(f"Comments, last {NOW_DAYS} days", f"{int(frame['comments'].sum()):,}")
    c.metric(f"Scored, last {NOW_DAYS} days", f"{int(frame['scored'].sum()):,}")
    d.metric("Open alerts", open_alerts, help="Spike alerts not yet acknowledged: see the Alerts page.")

    number = st.column_config.NumberColumn
    selection = st.dataframe(
        frame,
        hide_index=True,
        key="overview-table",
        on_select="rerun",
        selection_mode="single-row",
        column_order=[
            "community",
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
            "community": st.column_config.TextColumn("Community", pinned=True, width=150),
            "comments": number("Comments", format="localized", width=80, help=f"Comments in the last {NOW_DAYS} days."),
            "alliance": number(
                "Alliance",
                format="%+.2f",
                width=68,
                help=f"Alliance index, last {NOW_DAYS} days. " + charts.definition_help("alliance"),
            ),
            "alliance_baseline": number(
                "baseline", format="%+.2f", width=68, help=f"Alliance index over the {BASELINE_DAYS} days before."
            ),
            "alliance_change": number(
                "Δ", format="%+.2f", width=56, help="Alliance now minus baseline: below 0, the tone got worse."
            ),
            "hostile_share": number(
                "Hostile",
                format="%.1f%%",
                width=68,
                help=f"Hostile share, last {NOW_DAYS} days. " + charts.definition_help("hostile_share"),
            ),
            "hostile_share_baseline": number(
                "baseline", format="%.1f%%", width=68, help=f"Hostile share over the {BASELINE_DAYS} days before."
            ),
            "hostile_share_change": number(
                "Δ pts", format="%+.1f", width=56, help="Hostile share now minus baseline, in percentage points."
            ),
            "trend": st.column_config.LineChartColumn(
                "Alliance, daily",
                width=110,
                help=f"Daily alliance index over the last {TREND_DAYS} days, days with enough data only (each row on "
                "its own scale).",
            ),
            "open_alerts": number("Alerts", width=56, help="Open (unacknowledged) alerts."),
            "page": st.column_config.LinkColumn("", display_text="open ›", width=60),
        },
    )
    st.caption(
        f"Now: last {NOW_DAYS} days; baseline: the {BASELINE_DAYS} days before; Δ: now minus baseline. Blank cells: "
        "fewer than 10 scored comments, not enough data for a number. Sort by clicking a column header; select a "
        "row (or **open ›**) for the community's page."
    )
    rows = selection.selection.rows if selection is not None else []
    if rows:
        st.switch_page("views/community.py", query_params={"community": frame.iloc[rows[0]]["community"]})
    ui.definitions_expander(["alliance", "hostile_share"])


ui.guarded(page)
