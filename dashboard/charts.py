"""Altair charts: every axis says what it measures and in which unit; estimates carry their 95% band."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import altair as alt
import pandas as pd

from dashboard import ui
from monitor.metrics.definitions import METRICS, shown
from monitor.metrics.rollups import BUCKETS, BucketStats, bucket_start

alt.data_transformers.disable_max_rows()  # the pages bound their data themselves (periods, buckets, one thread)

HOSTILE = "#c0392b"
LATE_REPLY_HOURS = 48
LOG_TICKS = [0, 1, 3, 10, 30, 100, 300, 1_000, 3_000, 10_000, 30_000]
CIVIL = "#2e86c1"
NEUTRAL = "#7f8c8d"
GAPS = "break-paths-show-domains"  # a bucket without a number breaks the line; the axis still spans the period
CATEGORIES = ["#1f77b4", "#e6550d", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


@dataclass(frozen=True)
class Measure:
    """One time-series metric: how it is read off a bucket and how its axis is labelled."""

    key: str
    title: str
    unit: str
    domain: tuple[float, float]
    percent: bool = False

    @property
    def axis_title(self) -> str:
        return f"{self.title} ({self.unit})"

    @property
    def value_format(self) -> str:
        return ".1%" if self.percent else ".3f"


MEASURES = {
    "hostility": Measure("hostility", "Mean hostility", "score 0–1", (0.0, 1.0)),
    "hostile_share": Measure("hostile_share", "Hostile share", "% of scored", (0.0, 1.0), percent=True),
    "respect": Measure("respect", "Mean respect", "score 0–1", (0.0, 1.0)),
    "warmth": Measure("warmth", "Mean warmth", "score 0–1", (0.0, 1.0)),
    "alliance": Measure("alliance", "Alliance index", "−1 to +1", (-1.0, 1.0)),
}


def local_time(epoch: int | float | pd.Series, tz: str) -> datetime | pd.Series:
    """Epoch seconds as naive wall-clock time in `tz` (what the axis shows, whatever the browser's zone)."""
    if isinstance(epoch, pd.Series):
        return pd.to_datetime(epoch, unit="s", utc=True).dt.tz_convert(tz).dt.tz_localize(None)
    return datetime.fromtimestamp(epoch, ZoneInfo(tz)).replace(tzinfo=None)


def series_frame(
    stats: list[BucketStats], measure: str, tz: str, grid: tuple[int, int, str] | None = None
) -> pd.DataFrame:
    """One row per bucket: start (local), value and 95% interval (clipped to the scale), scored; buckets with too
    few scored comments keep their row (for the counts) but no value. With grid=(since, until, bucket), every
    bucket of the period gets a row, empty ones too: lines break at gaps and the time axis spans the period."""
    low_bound, high_bound = MEASURES[measure].domain
    rows = []
    if grid is not None:
        since, until, bucket = grid
        present = {s.start_utc for s in stats}
        first = int(bucket_start(since, bucket))
        empty = [
            BucketStats(t, 0, 0, None, None, None, None, None, None)
            for t in range(first, until, BUCKETS[bucket])
            if t not in present
        ]
        stats = sorted([*stats, *empty], key=lambda s: s.start_utc)
    for s in stats:
        estimate = getattr(s, measure)
        enough = estimate is not None and shown(measure, s.scored)
        rows.append(
            {
                "start_utc": s.start_utc,
                "start": local_time(s.start_utc, tz),
                "value": estimate.value if enough else None,
                "low": max(estimate.low, low_bound) if enough else None,
                "high": min(estimate.high, high_bound) if enough else None,
                "scored": s.scored,
                "comments": s.comments,
            }
        )
    frame = pd.DataFrame(rows, columns=["start_utc", "start", "value", "low", "high", "scored", "comments"])
    return frame.astype({"value": float, "low": float, "high": float})


LONG_AXIS = pd.Timedelta(days=300)  # from about a year, day labels need their year


def _time_axis(frame: pd.DataFrame, bucket: str, tz: str) -> alt.X:
    long = not frame.empty and frame["start"].max() - frame["start"].min() > LONG_AXIS
    fmt = "%b %Y" if long and bucket != "hour" else {"hour": "%b %d %H:%M", "day": "%b %d", "week": "%b %d"}[bucket]
    return alt.X("start:T", title=f"{bucket.capitalize()} starting ({tz})", axis=alt.Axis(format=fmt, labelAngle=0))


def _y(measure: Measure, field: str = "value", title: str | None = None) -> alt.Y:
    axis = alt.Axis(format=".0%" if measure.percent else ".2f", title=title or measure.axis_title, titleFontSize=11)
    return alt.Y(f"{field}:Q", scale=alt.Scale(zero=False, nice=True), axis=axis)


def _tooltip(measure: Measure, bucket: str, extra: list[alt.Tooltip] | None = None) -> list[alt.Tooltip]:
    time_format = "%Y-%m-%d %H:%M"  # a UTC day starts at another hour elsewhere: say which
    return [
        *(extra or []),
        alt.Tooltip("start:T", title=f"{bucket} starting", format=time_format),
        alt.Tooltip("value:Q", title=measure.title, format=measure.value_format),
        alt.Tooltip("low:Q", title="95% interval from", format=measure.value_format),
        alt.Tooltip("high:Q", title="95% interval to", format=measure.value_format),
        alt.Tooltip("scored:Q", title="scored comments", format=","),
    ]


def trend(frame: pd.DataFrame, measure: str, bucket: str, tz: str, height: int = 210) -> alt.Chart:
    """One community's metric over time: the estimate as a line with points, its 95% interval as a band."""
    m = MEASURES[measure]
    base = alt.Chart(frame).encode(x=_time_axis(frame, bucket, tz))
    band = base.mark_area(opacity=0.22, color=CIVIL, invalid=GAPS).encode(y=_y(m, "low"), y2="high:Q")
    line = base.mark_line(color=CIVIL, invalid=GAPS, point=alt.OverlayMarkDef(size=22, color=CIVIL)).encode(
        y=_y(m), tooltip=_tooltip(m, bucket)
    )
    layers = [band, line]
    if measure == "alliance":
        layers.append(alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color=NEUTRAL, strokeDash=[4, 4]).encode(y="y:Q"))
    return alt.layer(*layers).properties(height=height)


def compare(frame: pd.DataFrame, measure: str, bucket: str, tz: str, height: int = 380) -> alt.Chart:
    """Several communities on the same axes; colour = community."""
    m = MEASURES[measure]
    data = frame
    color = alt.Color(
        "community:N",
        title="Community",
        scale=alt.Scale(range=CATEGORIES),
        legend=alt.Legend(orient="top", symbolType="stroke", symbolOpacity=1, symbolStrokeWidth=3),
    )
    base = alt.Chart(data).encode(x=_time_axis(data, bucket, tz), color=color)
    band = base.mark_area(opacity=0.15, invalid=GAPS).encode(y=_y(m, "low"), y2="high:Q")
    line = base.mark_line(invalid=GAPS, point=alt.OverlayMarkDef(size=20)).encode(
        y=_y(m), tooltip=_tooltip(m, bucket, [alt.Tooltip("community:N", title="community")])
    )
    return alt.layer(band, line).properties(height=height)


def histogram(bins: pd.DataFrame, threshold: float) -> alt.Chart:
    """Scored comments per hostility bin, the model's hostile threshold marked."""
    bars = (
        alt.Chart(bins)
        .mark_bar(color=CIVIL, opacity=0.85)
        .encode(
            x=alt.X(
                "low:Q",
                bin="binned",
                title="Hostility score (0 = civil, 1 = hostile)",
                scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format=".1f"),
            ),
            x2="high:Q",
            y=alt.Y("comments:Q", title="Scored comments"),
            color=alt.condition(alt.datum.low >= threshold - 1e-9, alt.value(HOSTILE), alt.value(CIVIL)),
            tooltip=[
                alt.Tooltip("low:Q", title="from", format=".2f"),
                alt.Tooltip("high:Q", title="to", format=".2f"),
                alt.Tooltip("comments:Q", title="comments", format=","),
            ],
        )
    )
    rule = alt.Chart(pd.DataFrame({"x": [threshold], "label": [f"hostile from {threshold:.2f}"]}))
    return (
        bars
        + rule.mark_rule(color=HOSTILE, strokeDash=[4, 4]).encode(x="x:Q")
        + rule.mark_text(align="left", dx=4, dy=-6, color=HOSTILE, baseline="top").encode(
            x="x:Q", y=alt.value(0), text="label:N"
        )
    ).properties(height=220)


def by_depth(depth: dict[int, tuple[float, int]], deepest: int) -> alt.Chart:
    frame = pd.DataFrame(
        [
            {"depth": d, "label": f"{d}+" if d == deepest else str(d), "mean": m, "comments": n}
            for d, (m, n) in sorted(depth.items())
        ]
    )
    return (
        alt.Chart(frame)
        .mark_bar(color=HOSTILE, opacity=0.8)
        .encode(
            x=alt.X(
                "label:N",
                sort=frame["label"].tolist(),
                title="Reply depth (0 = top level)",
                axis=alt.Axis(labelAngle=0),
            ),
            y=alt.Y("mean:Q", title="Mean hostility (score 0–1)", axis=alt.Axis(format=".2f")),
            tooltip=[
                alt.Tooltip("label:N", title="depth"),
                alt.Tooltip("mean:Q", title="mean hostility", format=".3f"),
                alt.Tooltip("comments:Q", title="comments", format=","),
            ],
        )
        .properties(height=220)
    )


def reciprocity(
    after_hostile: tuple[float, float, float, int], after_civil: tuple[float, float, float, int]
) -> alt.Chart:
    """Share of hostile replies after a hostile parent vs after a civil one, with Wilson intervals."""
    labels = ["to a hostile comment", "to a civil comment"]
    frame = pd.DataFrame(
        [
            {"parent": label, "value": e[0], "low": e[1], "high": e[2], "n": e[3]}
            for label, e in zip(labels, (after_hostile, after_civil), strict=True)
        ]
    )
    y = alt.Y("parent:N", title="Replies", sort=labels, axis=alt.Axis(labelLimit=200, labelFontSize=12))

    def x(field: str) -> alt.X:
        return alt.X(
            f"{field}:Q",
            scale=alt.Scale(domain=[0, 1]),
            axis=alt.Axis(format=".0%", title="Hostile replies (% of replies; line: 95% interval)"),
        )

    bars = (
        alt.Chart(frame)
        .mark_bar(opacity=0.75, height=34)
        .encode(
            x=x("value"),
            y=y,
            color=alt.Color("parent:N", scale=alt.Scale(domain=labels, range=[HOSTILE, CIVIL]), legend=None),
            tooltip=[
                alt.Tooltip("parent:N", title="replies"),
                alt.Tooltip("value:Q", title="hostile", format=".1%"),
                alt.Tooltip("low:Q", title="95% from", format=".1%"),
                alt.Tooltip("high:Q", title="95% to", format=".1%"),
                alt.Tooltip("n:Q", title="replies", format=","),
            ],
        )
    )
    errors = alt.Chart(frame).mark_rule(color="black", strokeWidth=1.5).encode(x=x("low"), x2="high:Q", y=y)
    return (bars + errors).properties(height=190)


def thread_tree(comments: pd.DataFrame, threshold: float, turn_id: str | None, tz: str) -> alt.Chart:
    """A thread's replies: time across, depth down, each comment coloured by hostility, joined to its parent;
    a dashed line where the thread turned."""
    frame = comments.copy()
    frame["hours"] = (frame["created_utc"] - frame["created_utc"].min()) / 3600
    frame["when"] = local_time(frame["created_utc"], tz)
    frame["depth"] = frame["depth"].fillna(0)
    frame["score"] = [
        f"{h:.2f}" if not pd.isna(h) else f"not scored: {why}" if isinstance(why, str) else "not scored"
        for h, why in zip(frame["hostility"], frame["skip_reason"], strict=True)
    ]
    frame["hostile"] = frame["hostility"].map(
        lambda h: "—" if pd.isna(h) else ("hostile" if h >= threshold else "civil")
    )
    frame["excerpt"] = frame["text"].map(lambda t: None if t is None or pd.isna(t) else ui.clipped(ui.one_line(t), 141))
    position = frame[["platform_id", "hours", "depth"]].rename(
        columns={"platform_id": "parent", "hours": "hours_parent", "depth": "depth_parent"}
    )
    edges = frame.merge(position, on="parent", how="inner")
    # A late reply (days on) would squeeze the whole conversation into the first pixels: then a log scale.
    late = frame["hours"].max() > LATE_REPLY_HOURS
    x_title = "Hours since the first comment" + (" (log scale)" if late else "")
    x_scale = alt.Scale(type="symlog") if late else alt.Scale()
    ticks = [t for t in LOG_TICKS if t <= frame["hours"].max()] if late else alt.Undefined
    y_scale = alt.Scale(reverse=True, domain=[-0.5, float(frame["depth"].max()) + 0.5], nice=False)
    links = (
        alt.Chart(edges)
        .mark_rule(color="#bdc3c7", strokeWidth=1, tooltip=False)  # Streamlit's default would list raw columns
        .encode(
            x=alt.X("hours_parent:Q", title=x_title, scale=x_scale),
            y=alt.Y("depth_parent:Q", scale=y_scale),
            x2="hours:Q",
            y2="depth:Q",
        )
    )
    tooltip = [
        alt.Tooltip("when:T", title=f"posted ({tz})", format="%Y-%m-%d %H:%M"),
        alt.Tooltip("author:N", title="author (pseudonym)"),
        alt.Tooltip("score:N", title="hostility"),
        alt.Tooltip("depth:Q", title="depth"),
    ]
    if frame["excerpt"].notna().any():
        tooltip.append(alt.Tooltip("excerpt:N", title="text"))
    points = (
        alt.Chart(frame)
        .mark_circle(size=90, opacity=0.95, stroke="#555", strokeWidth=0.5)
        .encode(
            x=alt.X("hours:Q", title=x_title, scale=x_scale, axis=alt.Axis(values=ticks)),
            y=alt.Y(
                "depth:Q",
                title="Reply depth (0 = top level)",
                scale=y_scale,
                axis=alt.Axis(tickMinStep=1, format="d"),
            ),
            color=alt.Color(
                "hostility:Q",
                title="Hostility (0–1)",
                scale=alt.Scale(domain=[0, threshold, 1], range=[CIVIL, "#e5e7e9", HOSTILE], interpolate="lab"),
            ),
            tooltip=tooltip,
        )
    )
    layers = [links, points]
    if turn_id is not None and turn_id in set(frame["platform_id"]):
        turn = frame[frame["platform_id"] == turn_id].assign(label="turned here")
        layers.append(
            alt.Chart(turn)
            .mark_rule(color=HOSTILE, strokeDash=[6, 4], strokeWidth=2)
            .encode(x=alt.X("hours:Q", scale=x_scale))
        )
        layers.append(
            alt.Chart(turn)
            .mark_text(align="left", dx=5, dy=8, color=HOSTILE, fontWeight="bold", baseline="top")
            .encode(x=alt.X("hours:Q", scale=x_scale), y=alt.value(0), text="label:N")
        )
        layers.append(
            alt.Chart(turn)
            .mark_point(shape="diamond", size=260, color=HOSTILE, filled=False, strokeWidth=2)
            .encode(x=alt.X("hours:Q", scale=x_scale), y=alt.Y("depth:Q", scale=y_scale))
        )
    height = int(min(560, max(260, 60 * (frame["depth"].max() + 2))))
    return alt.layer(*layers).properties(height=height)


def definition_help(metric: str) -> str:
    """A metric's meaning, formula and minimum sample, for tooltips."""
    d = METRICS[metric]
    return f"**{d.title}**: {d.meaning}\n\nHow: {d.formula}.\n\nShown from {d.min_sample} {d.sample_of}."
