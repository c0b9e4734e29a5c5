"""Data health: collection runs and their outcomes, lag per community, scoring backlog, the model and its card."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import monitor.scoring
from dashboard import queries, ui

MODEL_CARD = Path(monitor.scoring.__file__).parent / "heads" / "alliance-minilm" / "MODEL_CARD.md"
STATUS_ICON = {"ok": "✓ ok", "partial": "⚠ partial", "failed": "✗ failed", "running": "… running"}
LAG_WARNING_S = 6 * 3600


def communities(ctx: ui.Context) -> None:
    st.subheader("Communities")
    frame = queries.community_health(ctx.url)
    if frame.empty:
        st.info(
            "No communities registered: add `[[communities]]` to civmon.toml and run `civmon init`.",
            icon=":material/info:",
        )
        return
    now = queries.now()
    frame = frame.assign(
        lag=[ui.fmt_ago(None if t is None or t != t else now - int(t)) for t in frame["last_success_utc"]],
        last_run=frame["last_run_utc"].map(lambda t: ui.fmt_time(None if t != t or t is None else int(t))),
        last_success=frame["last_success_utc"].map(lambda t: ui.fmt_time(None if t != t or t is None else int(t))),
        last_status=frame["last_status"].map(lambda s: STATUS_ICON.get(s, "— never run") if s else "— never run"),
        unscored=frame["comments"] - frame["scored"],
        last_error=frame["last_error"].fillna(""),
    )
    st.dataframe(
        ui.text_cells(frame)[
            [
                "community",
                "comments",
                "scored",
                "unscored",
                "last_run",
                "last_status",
                "last_success",
                "lag",
                "last_error",
            ]
        ],
        hide_index=True,
        placeholder=ui.NO_NUMBER,
        column_config={
            "community": st.column_config.TextColumn("Community", pinned=True, width=180),
            "comments": st.column_config.NumberColumn("Comments", format="localized", width=80, help="Comments stored"),
            "scored": st.column_config.NumberColumn(
                "Scored", format="localized", width=70, help="Comments with a current score from any model"
            ),
            "unscored": st.column_config.NumberColumn(
                "Not scored",
                format="localized",
                width=80,
                help="Stored comments without a score: deleted, removed or empty ones (nothing to score), and any "
                "scoring backlog (see Model).",
            ),
            "last_run": st.column_config.TextColumn("Last run (UTC)", width=130),
            "last_status": st.column_config.TextColumn("Outcome", width=80),
            "last_success": st.column_config.TextColumn("Last success (UTC)", width=130),
            "lag": st.column_config.TextColumn(
                "Lag", width=70, help="Time since the last run that finished ok or partial."
            ),
            "last_error": st.column_config.TextColumn("Last run's error", width=260),
        },
    )
    stale = [
        c
        for c, t in zip(frame["community"], frame["last_success_utc"], strict=True)
        if t is None or t != t or now - int(t) > LAG_WARNING_S
    ]
    if stale:
        st.warning(
            f"No successful collection in the last {LAG_WARNING_S // 3600} hours: {ui.plain(', '.join(stale))}. "
            "Is the scheduler running? Try `civmon collect` and read its summary.",
            icon=":material/schedule:",
        )


def runs(ctx: ui.Context) -> None:
    st.subheader("Runs")
    outcomes = queries.run_outcomes(ctx.url)
    columns = st.columns(4)
    for column, status in zip(columns, ["ok", "partial", "failed", "running"], strict=True):
        column.metric(STATUS_ICON[status].split(" ", 1)[1].capitalize() + " runs", f"{outcomes.get(status, 0):,}")
    frame = queries.runs(ctx.url)
    if frame.empty:
        st.info(
            "No runs recorded yet: `civmon collect` (or the scheduler) logs every collection here.",
            icon=":material/info:",
        )
        return
    frame = frame.assign(
        started=frame["started_utc"].map(lambda t: ui.fmt_time(int(t))),
        finished=frame["finished_utc"].map(lambda t: "—" if t is None or t != t else ui.fmt_time(int(t))),
        took=[
            ui.fmt_ago(None if f != f or f is None else int(f) - int(s))
            for s, f in zip(frame["started_utc"], frame["finished_utc"], strict=True)
        ],
        status=frame["status"].map(lambda s: STATUS_ICON.get(s, s)),
        error=frame["error"].fillna(""),
    )
    frame.loc[frame["finished_utc"].isna(), "took"] = "—"
    config = {
        "job": "Job",
        "community": "Community",
        "started": "Started (UTC)",
        "finished": "Finished (UTC)",
        "took": "Took",
        "status": "Status",
        "new": st.column_config.NumberColumn("New", format="localized"),
        "updated": st.column_config.NumberColumn("Updated", format="localized"),
        "deleted": st.column_config.NumberColumn("Deleted", format="localized"),
        "requests": st.column_config.NumberColumn("Requests", format="localized"),
        "errors": "Errors",
        "error": st.column_config.TextColumn("Error", width="large"),
    }
    st.markdown(f"**Latest {len(frame)} runs**")
    height = min(320, 35 * (len(frame) + 1) + 3)  # no empty rows below a short log
    st.dataframe(
        ui.text_cells(frame[list(config)]),
        hide_index=True,
        placeholder=ui.NO_NUMBER,
        column_config=config,
        height=height,
    )
    failed = frame[frame["error"] != ""]
    if not failed.empty:
        st.markdown(f"**Errors** ({len(failed)} of the latest runs)")
        for run in failed.head(10).itertuples():
            st.error(ui.plain(f"{run.started} · {run.job} · {run.community}: {run.error}"), icon=":material/error:")


def model(ctx: ui.Context) -> None:
    st.subheader("Model")
    versions = queries.model_versions(ctx.url)
    if ctx.state.version is None:
        st.info(
            f"No scores yet: nothing is scored. Run `civmon score` (model {ui.plain(ctx.settings.model.name)}, "
            "from the configuration).",
            icon=":material/info:",
        )
    else:
        current = next(v for v in versions if v.version == ctx.state.version)
        a, b = st.columns([3, 1])
        a.markdown(
            f"Scores shown are those of **{ui.plain(current.name)}**, version {ui.plain(current.version)} "
            f"(registered {ui.fmt_time(current.created_utc)} UTC); hostile from a hostility of "
            f"**{ctx.threshold:.2f}**."
        )
        backlog = queries.backlog(ctx.url, current.version)
        b.metric(
            "Scoring backlog",
            f"{backlog:,}",
            help="Live comments with text and no current score from this "
            "model version (new, or edited since scoring): `civmon score` works through them.",
        )
        if backlog:
            st.caption("Run `civmon score`, then `civmon metrics`, to bring the pages up to date.")
        if len(versions) > 1:
            st.caption(
                "Other versions in the store: "
                + ui.plain(", ".join(v.version for v in versions if v.version != current.version))
            )
    with st.expander("Model card", icon=":material/description:"):
        if MODEL_CARD.is_file():
            st.markdown(MODEL_CARD.read_text(encoding="utf-8"))
        else:
            st.caption(f"No model card at {ui.plain(MODEL_CARD)} (it ships with the trained alliance-minilm heads).")
    report = ui.eval_file()
    with st.expander("Latest evaluation (`civmon eval`)", icon=":material/fact_check:", expanded=report.is_file()):
        if report.is_file():
            st.caption(ui.plain(report.resolve()))
            st.markdown(report.read_text(encoding="utf-8"))
        else:
            st.caption(
                f"No evaluation report at {ui.plain(report)}: run `civmon eval` here (or set CIVMON_EVAL_DIR to the "
                "folder holding eval.md)."
            )


def page() -> None:
    st.title("Data health")
    ctx = ui.context(require="store")
    communities(ctx)
    runs(ctx)
    model(ctx)


ui.guarded(page)
