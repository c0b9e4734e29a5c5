"""Alerts: open spike alerts with an acknowledge button, and the alerts already seen."""

from __future__ import annotations

import streamlit as st

from dashboard import queries, ui

KINDS = {"hostility": "Mean hostility", "hostile_share": "Hostile share", "thread": "Thread turning hostile"}


def fmt_value(kind: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1%}" if kind in ("hostile_share", "thread") else f"{value:.2f}"


def fmt_bucket(bucket: str | None, start_utc: int) -> str:
    """Which bucket fired: the hour or day from its start (alerts raised before civmon recorded it: the start)."""
    return f"{bucket} from {ui.fmt_time(start_utc)}" if bucket in ("hour", "day") else ui.fmt_time(start_utc)


def page() -> None:
    st.title("Alerts")
    ctx = ui.context(require="communities")
    if (done := st.session_state.pop("acknowledged", None)) is not None:
        st.toast(f"Alert {done} acknowledged.", icon=":material/check:")
    frame = queries.alerts(ctx.url)
    open_ = frame[frame["acknowledged_utc"].isna()]
    past = frame[frame["acknowledged_utc"].notna()]
    a, b = st.columns(2)
    a.metric("Open alerts", len(open_))
    b.metric("Acknowledged", len(past), help="The most recent 500 alerts are listed.")
    if frame.empty:
        st.success(
            "No alerts yet. `civmon metrics` raises one when a community's (or a thread's) hostility rises "
            "well above its own baseline; the scheduler runs it after every scoring pass.",
            icon=":material/check_circle:",
        )
        return
    st.subheader("Open")
    if open_.empty:
        st.caption("Nothing open: every alert has been acknowledged.")
    for alert in open_.itertuples():
        with st.container(border=True):
            text, button = st.columns([5, 1.3], vertical_alignment="center")
            subject = f" · thread {ui.plain(alert.subject)}" if alert.subject else ""
            text.markdown(
                f"**{ui.plain(KINDS.get(alert.kind, alert.kind))}** in **{ui.plain(alert.community)}**{subject}  \n"
                f"{fmt_value(alert.kind, alert.value)} against a baseline of {fmt_value(alert.kind, alert.baseline)} "
                f"({alert.scored:,} scored comments) · {fmt_bucket(alert.bucket, alert.start_utc)} UTC · "
                f"raised {ui.fmt_time(alert.created_utc)} UTC · "
                f"[open the community ›]({ui.page_link('community', community=alert.community)})"
            )
            if button.button(
                "Acknowledge",
                key=f"ack-{alert.id}",
                icon=":material/done:",
                help="Mark it as seen: it moves to the acknowledged list.",
            ):
                queries.acknowledge(ctx.url, int(alert.id))
                st.session_state["acknowledged"] = int(alert.id)
                st.rerun()
    st.subheader("Acknowledged")
    if past.empty:
        st.caption("None yet.")
        return
    shown = past.assign(
        what=past["kind"].map(lambda k: KINDS.get(k, k)),
        value_text=[fmt_value(k, v) for k, v in zip(past["kind"], past["value"], strict=True)],
        baseline_text=[fmt_value(k, v) for k, v in zip(past["kind"], past["baseline"], strict=True)],
        bucket=[fmt_bucket(b, t) for b, t in zip(past["bucket"], past["start_utc"], strict=True)],
        raised=past["created_utc"].map(ui.fmt_time),
        seen=past["acknowledged_utc"].map(lambda t: ui.fmt_time(int(t))),
    )
    st.dataframe(
        ui.text_cells(
            shown[["community", "what", "subject", "value_text", "baseline_text", "scored", "bucket", "raised", "seen"]]
        ),
        hide_index=True,
        placeholder=ui.NO_NUMBER,
        column_config={
            "community": "Community",
            "what": "Kind",
            "subject": "Thread",
            "value_text": "Value",
            "baseline_text": "Baseline",
            "scored": "Scored comments",
            "bucket": "Bucket (UTC)",
            "raised": "Raised (UTC)",
            "seen": "Acknowledged (UTC)",
        },
    )


ui.guarded(page)
