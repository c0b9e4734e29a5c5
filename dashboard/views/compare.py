"""Compare: several communities, one metric, the same axes and buckets; the shown data as CSV."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, queries, ui

TZ = "UTC"  # communities may live in different zones: comparisons use one clock


def page() -> None:
    st.title("Compare communities")
    ctx = ui.context()
    by_key = {c.key: c for c in ctx.state.communities}
    if len(by_key) < 2:
        st.info(
            f"Only one community ({ui.plain(next(iter(by_key)))}) is stored: comparing needs two or more. Add another "
            "`[[communities]]` entry to civmon.toml, then run `civmon init` and `civmon collect`.",
            icon=":material/info:",
        )
        return
    left, right = st.columns([3, 2])
    chosen = left.multiselect(
        "Communities", list(by_key), default=list(by_key)[:4], key="compare-communities", format_func=ui.one_line
    )
    measure = right.selectbox(
        "Metric",
        list(charts.MEASURES),
        key="compare-metric",
        format_func=lambda m: charts.MEASURES[m].title,
        help="Each metric's meaning is below.",
    )
    if len(chosen) < 2:
        st.info("Choose at least two communities.", icon=":material/info:")
        return
    period = ui.period_picker(ctx, "compare", [by_key[key] for key in chosen])
    frames = []
    for key in chosen:
        stats = queries.series(ctx.url, by_key[key].id, ctx.version, period.bucket, period.since, period.until)
        grid = (period.since, period.until, period.bucket)
        frames.append(charts.series_frame(stats, measure, TZ, grid).assign(community=key))
    frame = pd.concat(frames, ignore_index=True)
    shown = frame.dropna(subset=["value"])
    m = charts.MEASURES[measure]
    st.subheader(f"{m.title} by {period.bucket}", help=charts.definition_help(measure))
    if shown.empty:
        st.info(
            f"Not enough data: no {period.bucket} in this period has 10 scored comments in any chosen community.",
            icon=":material/info:",
        )
        return
    st.altair_chart(charts.compare(frame, measure, period.bucket, TZ), width="stretch")
    missing = sorted(set(chosen) - set(shown["community"]))
    if missing:
        st.caption(f"Not enough data to draw: {ui.plain(', '.join(missing))}.")
    hidden = int(((frame["scored"] > 0) & frame["value"].isna()).sum())
    if hidden:
        st.caption(f"{hidden} buckets with fewer than 10 scored comments are not drawn (nor exported).")
    export = pd.DataFrame(
        {
            "community": shown["community"],
            "bucket": period.bucket,
            "start_utc": shown["start_utc"],
            "start": shown["start"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "metric": measure,
            "value": shown["value"],
            "low_95": shown["low"],
            "high_95": shown["high"],
            "scored": shown["scored"],
            "model_version": ctx.version,
        }
    )
    st.download_button(
        "Download these numbers (CSV)",
        export.to_csv(index=False).encode(),
        icon=":material/download:",
        file_name=f"civmon-{measure}-{period.bucket}-{ui.as_date(period.since)}-{ui.as_date(period.until - 1)}.csv",
        mime="text/csv",
        key="compare-csv",
    )
    with st.expander("The numbers in the chart"):
        st.dataframe(
            ui.text_cells(export.drop(columns=["metric", "model_version", "start_utc", "bucket"])),
            hide_index=True,
            placeholder=ui.NO_NUMBER,
            column_config={
                "start": st.column_config.TextColumn(f"{period.bucket.capitalize()} starting (UTC)"),
                "value": st.column_config.NumberColumn(m.title, format="%.4f"),
                "low_95": st.column_config.NumberColumn("95% from", format="%.4f"),
                "high_95": st.column_config.NumberColumn("95% to", format="%.4f"),
                "scored": st.column_config.NumberColumn("Scored comments"),
            },
        )
    ui.definitions_expander([measure])


ui.guarded(page)
