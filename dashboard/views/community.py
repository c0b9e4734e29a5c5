"""Community: trends with 95% bands, the shape of the scores, escalation, concentration, and what drove the period."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, queries, ui
from monitor.metrics import dynamics
from monitor.metrics.definitions import METRICS, shown

TREND_METRICS = ["alliance", "hostility", "hostile_share", "respect", "warmth"]


def headline(ctx: ui.Context, community: queries.CommunityInfo, period: ui.Period) -> None:
    now = queries.period_stats(ctx.url, community.id, ctx.version, period.since, period.until)
    length = period.until - period.since
    before = queries.period_stats(ctx.url, community.id, ctx.version, period.since - length, period.since)
    if before.comments:
        st.caption(
            f"Arrows: change against the {length // ui.DAY} days before, "
            f"{ui.fmt_range(period.since - length, period.since)}."
        )
    columns = st.columns(7)
    columns[0].metric(
        "Comments in period",
        f"{now.comments:,}",
        delta=f"{now.comments - before.comments:+,}" if before.comments else None,
        delta_color="off",
    )
    columns[1].metric("Scored comments", f"{now.scored:,}")
    specs = [
        ("alliance", False, "normal"),
        ("hostility", False, "inverse"),
        ("hostile_share", True, "inverse"),
        ("respect", False, "normal"),
        ("warmth", False, "normal"),
    ]
    for column, (metric, percent, colour) in zip(columns[2:], specs, strict=True):
        estimate, previous = getattr(now, metric), getattr(before, metric)
        delta, steady = None, False
        if estimate is not None and previous is not None and shown(metric, now.scored) and shown(metric, before.scored):
            delta, steady = ui.change(estimate.value - previous.value, percent)
        column.metric(
            METRICS[metric].title,
            ui.fmt_estimate(estimate, metric, now.scored, percent),
            delta=delta,
            delta_color="off" if steady else colour,
            delta_arrow="off" if steady else "auto",
            help=charts.definition_help(metric)
            + "\n\n"
            + (ui.interval(estimate, metric, now.scored, percent) or ui.not_enough(metric, now.scored)),
        )
    if not shown("hostility", now.scored):
        st.info(ui.not_enough("hostility", now.scored) + " Choose a longer period.", icon=":material/info:")


def trends(ctx: ui.Context, community: queries.CommunityInfo, period: ui.Period, tz: str) -> None:
    stats = queries.series(ctx.url, community.id, ctx.version, period.bucket, period.since, period.until)
    st.caption(
        "Each point is one bucket's estimate; the band is its 95% interval. Buckets with fewer than 10 "
        "scored comments are not drawn."
    )
    if not stats:
        st.info("No comments in this period.", icon=":material/info:")
        return
    grid = (period.since, period.until, period.bucket)
    frames = {m: charts.series_frame(stats, m, tz, grid) for m in TREND_METRICS}
    hidden = sum(1 for s in stats if not shown("hostility", s.scored))
    if hidden == len(stats):
        st.info(
            f"Not enough data: no {period.bucket} in this period has 10 scored comments. Try a longer bucket.",
            icon=":material/info:",
        )
        return
    chart(frames, "alliance", period, tz, st.container(), height=230)
    for pair in (("hostility", "hostile_share"), ("respect", "warmth")):
        for column, metric in zip(st.columns(2), pair, strict=True):
            chart(frames, metric, period, tz, column)
    if hidden:
        st.caption(
            f"{hidden} of {len(stats)} {period.bucket}s with comments had fewer than 10 scored: not drawn "
            "(gaps in the lines)."
        )


def chart(frames: dict[str, pd.DataFrame], metric: str, period: ui.Period, tz: str, where, height: int = 210) -> None:  # type: ignore[no-untyped-def]
    where.markdown(f"**{METRICS[metric].title}** by {period.bucket}", help=charts.definition_help(metric))
    where.altair_chart(charts.trend(frames[metric], metric, period.bucket, tz, height=height), width="stretch")


def distribution(ctx: ui.Context, community: queries.CommunityInfo, period: ui.Period) -> None:
    st.subheader("Distribution of hostility", help=charts.definition_help("polarisation"))
    now = queries.period_stats(ctx.url, community.id, ctx.version, period.since, period.until)
    left, right = st.columns([1, 2])
    if now.shape is None or not shown("polarisation", now.scored):
        left.info(ui.not_enough("polarisation", now.scored), icon=":material/info:")
    else:
        left.metric("Spread (sd)", f"{now.shape.sd:.3f}", help="Standard deviation of hostility scores.")
        left.metric(
            "Bimodality",
            f"{now.shape.bimodality:.2f}",
            help="Sarle's coefficient: above 0.555 suggests two camps rather than one shared tone.",
        )
        left.metric("Skewness", f"{now.shape.skewness:+.2f}", help="Above 0: a long tail of hostile comments.")
        if now.shape.bimodality > 5 / 9:
            left.warning("Polarised: the scores suggest two camps.", icon=":material/call_split:")
    bins = queries.histogram(ctx.url, community.id, ctx.version, period.since, period.until)
    if bins["comments"].sum():
        right.altair_chart(charts.histogram(bins, ctx.threshold), width="stretch")
        right.caption(
            f"Scored comments of the period by hostility score, in bins of 0.05; red: hostile (at or above "
            f"the model's threshold, {ctx.threshold:.2f})."
        )


def escalation(ctx: ui.Context, community: queries.CommunityInfo, period: ui.Period) -> None:
    result = queries.escalation(ctx.url, community.id, ctx.version, period.since, period.until)
    left, right = st.columns(2)
    with left:
        st.markdown("**Does hostility breed hostility?**", help=charts.definition_help("reciprocity"))
        r = result.reciprocity
        if r.after_hostile is None or r.after_civil is None:
            st.info(
                f"Not enough data: {result.replies_after_hostile} replies to hostile comments and "
                f"{result.replies_after_civil} to civil ones; {METRICS['reciprocity'].min_sample} of each needed.",
                icon=":material/info:",
            )
        else:
            st.altair_chart(
                charts.reciprocity(*((e.value, e.low, e.high, e.n) for e in (r.after_hostile, r.after_civil))),
                width="stretch",
            )
            if r.ratio is not None:
                st.caption(
                    f"A reply to a hostile comment is **{r.ratio:.1f}×** as likely to be hostile as a reply "
                    "to a civil one."
                )
    with right:
        st.markdown("**Hostility by reply depth**", help=charts.definition_help("depth"))
        if result.depth:
            st.altair_chart(charts.by_depth(result.depth, dynamics.DEEPEST), width="stretch")
        else:
            st.info(
                f"Not enough data: no reply depth has {METRICS['depth'].min_sample} scored comments.",
                icon=":material/info:",
            )
    st.markdown(f"**Derailed threads** ({len(result.derailed)})", help=charts.definition_help("derailed"))
    if result.derailed:
        frame = pd.DataFrame(
            [
                {
                    "title": d.title or f"(thread {d.thread})",
                    "comments": d.comments,
                    "opening": d.opening_share,
                    "later": d.later_share,
                    "thread": d.thread,
                }
                for d in result.derailed
            ]
        )
        ids = queries.thread_ids(ctx.url, community.id, tuple(frame["thread"]))
        frame["open"] = [ui.page_link("thread", thread=ids[t]) if t in ids else None for t in frame["thread"]]
        frame[["opening", "later"]] *= 100
        st.dataframe(
            ui.text_cells(frame.drop(columns=["thread"])),
            hide_index=True,
            placeholder=ui.NO_NUMBER,
            column_config={
                "title": st.column_config.TextColumn("Thread", width="large"),
                "comments": st.column_config.NumberColumn("Scored comments"),
                "opening": st.column_config.NumberColumn("Hostile in the first 10", format="%.0f%%"),
                "later": st.column_config.NumberColumn("Hostile afterwards", format="%.0f%%"),
                "open": st.column_config.LinkColumn("Reply tree", display_text="show ›"),
            },
        )
    else:
        st.caption("No thread in this period opened civil and turned hostile.")


def concentration(ctx: ui.Context, community: queries.CommunityInfo, period: ui.Period) -> None:
    result = queries.escalation(ctx.url, community.id, ctx.version, period.since, period.until)
    st.subheader("Concentration", help=charts.definition_help("concentration"))
    c = result.concentration
    if c is None:
        st.info(
            f"Not enough data: fewer than {METRICS['concentration'].min_sample} hostile comments in the period.",
            icon=":material/info:",
        )
        return
    a, b, d, e = st.columns(4)
    a.metric(
        "Written by the top 1% of authors", f"{c.top_1_percent:.0%}", help="Share of the period's hostile comments."
    )
    b.metric("Written by the top 10% of authors", f"{c.top_10_percent:.0%}")
    d.metric("Authors", f"{c.authors:,}")
    e.metric("Hostile comments", f"{c.hostile_comments:,}")
    st.caption("A few bad actors show as a high top-1% share; a culture of hostility as a low one.")


def drivers(ctx: ui.Context, community: queries.CommunityInfo, period: ui.Period, tz: str) -> None:
    threads = queries.hot_threads(ctx.url, community.id, ctx.version, period.since, period.until)
    threads = threads[threads["hostile"] > 0]
    st.markdown("**Threads with the most hostile comments**")
    if threads.empty:
        st.caption("No hostile comments in this period.")
    else:
        threads = threads.assign(
            tree=[ui.page_link("thread", thread=t) for t in threads["thread_id"]],
            hostile_share=100 * threads["hostile_share"],
        )
        st.dataframe(
            ui.text_cells(threads.drop(columns=["thread_id"])),
            hide_index=True,
            placeholder=ui.NO_NUMBER,
            column_config={
                "title": st.column_config.TextColumn("Thread", width="large"),
                "hostile": st.column_config.NumberColumn(
                    "Hostile", help="Hostile comments in the period", width="small"
                ),
                "scored": st.column_config.NumberColumn("Scored", help="Scored comments in the period", width="small"),
                "hostile_share": st.column_config.NumberColumn("Hostile share", format="%.0f%%", width="small"),
                "mean_hostility": st.column_config.NumberColumn("Mean hostility", format="%.2f", width="small"),
                "link": st.column_config.LinkColumn("Original", display_text="open ↗", width="small"),
                "tree": st.column_config.LinkColumn("Reply tree", display_text="show ›", width="small"),
            },
        )
    st.markdown("**Most hostile comments**")
    comments = queries.hostile_comments(
        ctx.url, community.id, ctx.version, period.since, period.until, ctx.settings.privacy.keep_bodies
    )
    if comments.empty:
        st.caption("No scored comments in this period.")
        return
    comments = comments.assign(
        posted=charts.local_time(comments["created_utc"], tz),
        tree=[ui.page_link("thread", thread=t) for t in comments["thread_id"]],  # the conversation around it
    )
    columns = ["hostility", "text", "thread", "posted", "author", "link", "tree"]
    if not ctx.settings.privacy.keep_bodies:
        columns.remove("text")
        st.caption("Comment text is not kept (`[privacy] keep_bodies = false`): follow the links to read them.")
    st.dataframe(
        ui.text_cells(comments[columns]),
        hide_index=True,
        placeholder=ui.NO_NUMBER,
        column_config={
            "hostility": st.column_config.ProgressColumn(
                "Hostility", min_value=0.0, max_value=1.0, format="%.2f", width=105
            ),
            "posted": st.column_config.DatetimeColumn(f"Posted ({tz})", format="YYYY-MM-DD HH:mm", width=150),
            "author": st.column_config.TextColumn("Author (pseudonym)", width=145),
            "thread": st.column_config.TextColumn("Thread", width=150),
            "text": st.column_config.TextColumn("Text", width=320),
            "link": st.column_config.LinkColumn("Original", display_text="open ↗", width=70),
            "tree": st.column_config.LinkColumn("Reply tree", display_text="show ›", width=80),
        },
    )


def escalation_and_concentration(ctx: ui.Context, community: queries.CommunityInfo, period: ui.Period, tz: str) -> None:
    escalation(ctx, community, period)
    concentration(ctx, community, period)


VIEWS = {
    "Trends": trends,
    "Distribution": lambda ctx, community, period, tz: distribution(ctx, community, period),
    "Escalation": escalation_and_concentration,
    "Threads and comments": drivers,
}


def page() -> None:
    title = st.empty()
    title.title("Community")
    ctx = ui.context()
    community = ui.pick_community(ctx, st.columns([2, 5])[0])
    tz = ctx.tz(community)
    title.title(ui.plain(community.label), help=ui.plain(f"{community.key}; times shown in {tz}"))
    period = ui.period_picker(ctx, "community", [community])
    headline(ctx, community, period)
    # Tabs that compute only when open (and say which is open in the URL, ?view=...): the first view costs what
    # the rollups cost, the comment-level sections are paid for when asked for.
    views = st.tabs(list(VIEWS), key="view", bind="query-params")
    for tab, name in zip(views, VIEWS, strict=True):
        if tab.open is not False:
            with tab:
                VIEWS[name](ctx, community, period, tz)
    ui.definitions_expander(list(METRICS))


ui.guarded(page)
