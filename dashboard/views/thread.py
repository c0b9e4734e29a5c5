"""Thread: the reply tree coloured by hostility, and where the conversation turned."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from dashboard import charts, queries, ui
from monitor.metrics import dynamics

TITLE_CHARS = 200
MAX_ROW_ID = 2**31 - 1  # threads.id is a 32-bit INTEGER on PostgreSQL: a larger one is no thread, not an error


@dataclass(frozen=True)
class Turn:
    comment: str | None  # platform id of the turning comment
    derailed: bool  # meets the full definition (definitions.METRICS["derailed"])
    opening_share: float | None
    later_share: float | None
    scored: int


def find_turn(comments: pd.DataFrame, threshold: float) -> Turn:
    """dynamics.derailed's rule on one thread: scored comments in time order, the first OPENING of them at most
    10% hostile, later ones at least 30%, 20 or more in all; the turn is the first hostile comment after the
    opening. A thread that opened civil but does not meet the whole rule still shows its first hostile reply."""
    scored = comments.dropna(subset=["hostility"]).sort_values(["created_utc", "id"])
    hostile = (scored["hostility"] >= threshold).tolist()
    n = len(hostile)
    if n <= dynamics.OPENING:
        return Turn(None, False, None, None, n)
    opening, later = hostile[: dynamics.OPENING], hostile[dynamics.OPENING :]
    opening_share, later_share = sum(opening) / dynamics.OPENING, sum(later) / len(later)
    civil_opening = opening_share <= dynamics.DERAIL_OPENING_MAX
    turn = None
    if civil_opening and any(later):
        turn = scored["platform_id"].iloc[dynamics.OPENING + later.index(True)]
    derailed = civil_opening and later_share >= dynamics.DERAIL_LATER_MIN and n >= dynamics.DERAIL_MIN_COMMENTS
    return Turn(turn, derailed, opening_share, later_share, n)


def tree_order(comments: pd.DataFrame) -> pd.DataFrame:
    """Comments in reading order: each followed by its replies (oldest first), as an indented tree reads."""
    ids = set(comments["platform_id"])
    children: dict[str | None, list[int]] = {}
    for i, row in comments.iterrows():
        parent = row["parent"] if row["parent"] in ids else None  # top level, or a parent not collected
        children.setdefault(parent, []).append(i)
    order: list[int] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        i = stack.pop()
        order.append(i)
        stack.extend(reversed(children.get(comments.at[i, "platform_id"], [])))
    return comments.loc[order]


def _row_id(text: str) -> int | None:
    """A thread's row id from a link: ASCII digits (str.isdigit takes "²") within the column's range."""
    if re.fullmatch("[0-9]{1,10}", text) and (number := int(text)) <= MAX_ROW_ID:
        return number
    return None


def pick_thread(ctx: ui.Context) -> int | None:
    wanted = st.query_params.get("thread")
    if wanted is not None:
        info = queries.thread_info(ctx.url, number) if (number := _row_id(wanted)) is not None else None
        if info is not None:
            if st.button("Choose another thread", icon=":material/arrow_back:"):
                del st.query_params["thread"]
                st.rerun()
            return info.id
        st.warning(f"No thread with id {ui.plain(wanted)} in the database: choose one below.")
    community = ui.pick_community(ctx, st.columns([2, 5])[0])
    period = ui.period_picker(ctx, "thread", [community], days=7, bucket=False)
    threads = queries.recent_threads(ctx.url, community.id, ctx.version, period.since, period.until)
    if threads.empty:
        st.info("No scored comments in this period: choose a longer one.", icon=":material/info:")
        return None
    labels = {
        int(r.thread_id): f"{ui.clipped(ui.one_line(r.title), 90)} — {r.hostile} hostile of {r.scored} scored"
        for r in threads.itertuples()
    }
    return st.selectbox(
        "Thread (most hostile comments in the period first)", list(labels), key="thread-pick", format_func=labels.get
    )


def page() -> None:
    st.title("Thread")
    ctx = ui.context()
    thread_id = pick_thread(ctx)
    if thread_id is None:
        return
    info = queries.thread_info(ctx.url, thread_id)
    community = next(c for c in ctx.state.communities if c.id == info.community_id)
    tz = ctx.tz(community)
    comments = queries.thread_comments(ctx.url, thread_id, ctx.version, ctx.settings.privacy.keep_bodies)
    title = ui.one_line(info.title or f"(thread {info.platform_id})")
    st.subheader(ui.plain(ui.clipped(title, TITLE_CHARS)))
    if len(title) > TITLE_CHARS:  # a title of pages would push the tree out of sight
        with st.expander("Whole title"):
            st.markdown(ui.plain(title))
    original = f" · [open the original ↗]({info.link})" if info.link else ""
    st.markdown(f"{ui.plain(community.key)}{original}")
    if comments.empty:
        st.info("No comments of this thread are stored yet (`civmon collect` reads its tree).", icon=":material/info:")
        return
    turn = find_turn(comments, ctx.threshold)
    hostile = int((comments["hostility"] >= ctx.threshold).sum())
    a, b, c, d = st.columns(4)
    a.metric("Comments", f"{len(comments):,}")
    b.metric("Scored", f"{turn.scored:,}")
    c.metric("Hostile", f"{hostile:,}", help=f"Hostility at or above the model's threshold, {ctx.threshold:.2f}.")
    d.metric("Derailed", "yes" if turn.derailed else "no", help=charts.definition_help("derailed"))
    if turn.comment is not None:
        posted = comments.loc[comments["platform_id"] == turn.comment, "created_utc"].iloc[0]
        what = "It derailed" if turn.derailed else "First hostile reply after a civil opening"
        st.markdown(
            f"**{what}** at comment {ui.plain(turn.comment)} ({ui.fmt_time(int(posted), tz)} {ui.plain(tz)}): "
            f"the first 10 scored comments were {turn.opening_share:.0%} hostile, "
            f"the later ones {turn.later_share:.0%}."
        )
    elif turn.opening_share is not None and turn.opening_share > dynamics.DERAIL_OPENING_MAX:
        st.markdown(f"The thread opened hostile ({turn.opening_share:.0%} of the first 10 scored comments).")
    st.altair_chart(charts.thread_tree(comments, ctx.threshold, turn.comment, tz), width="stretch")
    st.caption(
        "Each dot is a comment (colour: hostility, blue civil → red hostile), joined to the comment it answers; "
        "grey lines are replies. Hover a dot for details."
    )
    ordered = tree_order(comments)
    ordered = ordered.assign(
        comment=[
            ("\u2003" * int(d or 0))
            + ("↳ " if d else "")
            + ("⚑ TURN: " if pid == turn.comment else "")
            + (t if isinstance(t, str) and t else f"[{state}]" if state != "live" else f"[{pid}]")
            for d, t, pid, state in zip(
                ordered["depth"].fillna(0), ordered["text"], ordered["platform_id"], ordered["state"], strict=True
            )
        ],
        posted=charts.local_time(ordered["created_utc"], tz),
    )
    st.markdown("**Reply tree** (each comment followed by its replies; ⚑ marks the turn)")
    st.dataframe(
        ui.text_cells(ordered[["comment", "hostility", "author", "posted", "link"]]),
        hide_index=True,
        placeholder=ui.NO_NUMBER,
        height=min(40 + 35 * len(ordered), 720),
        column_config={
            "comment": st.column_config.TextColumn(
                "Comment" if ctx.settings.privacy.keep_bodies else "Comment (text not kept)", width=440
            ),
            "hostility": st.column_config.ProgressColumn(
                "Hostility", min_value=0.0, max_value=1.0, format="%.2f", width=110
            ),
            "author": st.column_config.TextColumn("Author (pseudonym)", width=145),
            "posted": st.column_config.DatetimeColumn(f"Posted ({tz})", format="YYYY-MM-DD HH:mm", width=150),
            "link": st.column_config.LinkColumn("Original", display_text="open ↗", width=70),
        },
    )


ui.guarded(page)
