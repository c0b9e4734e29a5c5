"""Spike alerts: firing exactly above the robust limit, one alert per incident, webhook delivery."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from monitor.config import AlertSettings
from monitor.metrics.alerts import MAD_TO_SD, check_bucket, deliver, evaluate
from monitor.metrics.rollups import rebuild, refresh
from monitor.store.models import Alert, Rollup

from conftest import migrate, schema_drift
from seed import DAY, MODEL, MONDAY, Seed, seed

SETTINGS = AlertSettings(min_comments=30, threshold_mads=3.0)


def day(start: int, scored: int, hostile: int) -> Rollup:
    return Rollup(
        bucket="day",
        start_utc=start,
        comments=scored,
        scored=scored,
        hostile=hostile,
        hostility_sum=0.3 * scored,
        hostility_sum2=0.1 * scored,
        hostility_sum3=0.04 * scored,
        hostility_sum4=0.02 * scored,
        respect_n=0,
        respect_sum=0,
        respect_sum2=0,
        warmth_n=0,
        warmth_sum=0,
        warmth_sum2=0,
        alliance_n=0,
        alliance_sum=0,
        alliance_sum2=0,
    )


# Ten days at 10% hostile share, except two at 12% and two at 8%: median 0.10, MAD 0 -> the bucket's own noise rules.
HISTORY = [day(MONDAY + i * DAY, 1000, h) for i, h in enumerate([100, 100, 120, 80, 100, 100, 120, 80, 100, 100])]


def test_fires_just_above_the_limit_and_not_at_it():
    today = MONDAY + 10 * DAY
    quiet = check_bucket(day(today, 1000, 100), HISTORY, "hostile_share", SETTINGS)
    assert quiet is not None and quiet.baseline == pytest.approx(0.10) and not quiet.fires
    # The limit depends on the bucket's own error: find the hostile count where it crosses.
    counts = range(100, 400)
    checks = {k: check_bucket(day(today, 1000, k), HISTORY, "hostile_share", SETTINGS) for k in counts}
    first = min(k for k, c in checks.items() if c.fires)
    below = checks[first - 1]
    assert below.value <= below.limit < checks[first].value  # fires only strictly above the limit
    se = ((first / 1000) * (1 - first / 1000) / 1000) ** 0.5
    assert checks[first].limit == pytest.approx(0.10 + 3.0 * max(MAD_TO_SD * 0.0, se))


def test_too_few_comments_or_no_baseline_never_fires():
    today = MONDAY + 10 * DAY
    assert check_bucket(day(today, 29, 29), HISTORY, "hostile_share", SETTINGS) is None
    no_history = check_bucket(day(today, 1000, 900), HISTORY[:3], "hostile_share", SETTINGS)
    assert no_history is not None and not no_history.fires and no_history.limit is None


def spike_database(engine, spike_days: int = 1) -> None:
    """Ten calm days (10% hostile), then `spike_days` days at 60% hostile, 40 comments a day."""
    items = []
    for d in range(10 + spike_days):
        rate = 0.6 if d >= 10 else 0.1
        for i in range(40):
            items.append(
                Seed(f"d{d}c{i}", MONDAY + d * DAY + 3600 + i * 60, 0.9 if i < rate * 40 else 0.1, thread=f"t{d}")
            )
    seed(engine, items)
    rebuild(engine, MODEL)


def test_spike_in_the_database_raises_one_alert_per_incident(engine):
    spike_database(engine)
    first = evaluate(engine, MODEL, SETTINGS, now=MONDAY + 11 * DAY)
    kinds = sorted(a.kind for a in first)
    assert "hostile_share" in kinds and all("reddit/seeded" in a.message for a in first)
    again = evaluate(engine, MODEL, SETTINGS, now=MONDAY + 11 * DAY + 60)  # same incident: no repeat
    assert again == []
    with engine.connect() as connection:
        assert connection.scalar(select(Alert.kind).where(Alert.kind == "hostile_share")) == "hostile_share"


def test_thread_turning_hostile_fast(engine):
    calm = [Seed(f"c{d}_{i}", MONDAY + d * DAY + i * 60, 0.1, thread=f"calm{d}") for d in range(5) for i in range(40)]
    hot = [Seed(f"h{i}", MONDAY + 5 * DAY + i * 60, 0.9 if i % 4 else 0.2, thread="hot") for i in range(12)]
    seed(engine, calm + hot)
    rebuild(engine, MODEL)
    alerts = evaluate(engine, MODEL, SETTINGS, now=MONDAY + 6 * DAY)
    assert [(a.kind, a.subject) for a in alerts if a.kind == "thread"] == [("thread", "hot")]
    # its comments fell from 00:00 to 00:11: the alert names that hour, not the one before the latest comment's
    assert [(a.bucket, a.start_utc) for a in alerts if a.kind == "thread"] == [("hour", MONDAY + 5 * DAY)]


HOURLY = AlertSettings(min_comments=10, threshold_mads=3.0)


def hour(start: int, hostile: int, tag: str, first_seen: int | None = None) -> list[Seed]:
    """An hour of 12 comments, `hostile` of them hostile, in a thread of its own."""
    return [
        Seed(f"{tag}_{j}", start + j * 60, 0.9 if j < hostile else 0.1, thread=tag, first_seen=first_seen)
        for j in range(12)
    ]


def calm_days(days: int) -> list[Seed]:
    """Collected and scored long before the tests' runs (a second's overlap would check them all again)."""
    return [s for h in range(days * 24) for s in hour(MONDAY + h * 3600, 1, f"calm{h}", first_seen=MONDAY)]


def test_a_spike_is_alerted_when_the_next_hours_first_comment_came_with_it(engine):
    seed(engine, calm_days(6))
    refresh(engine, MODEL)
    assert evaluate(engine, MODEL, HOURLY, now=MONDAY + 6 * DAY) == []
    spike = MONDAY + 6 * DAY
    # one collection brings the spike hour and the first comment of the hour after it
    seed(engine, hour(spike, 11, "spike") + [Seed("next", spike + 3600 + 60, 0.1, thread="next")])
    refresh(engine, MODEL)
    alerts = evaluate(engine, MODEL, HOURLY, now=spike + 3600 + 300)
    community = [(a.kind, a.bucket, a.start_utc) for a in alerts if not a.subject]
    assert community == [("hostile_share", "hour", spike), ("hostility", "hour", spike)]
    assert "in the hour from 2023-11-26 00:00 UTC" in alerts[0].message


def test_an_hour_alert_at_midnight_leaves_room_for_its_days(engine):
    """The hour from 00:00 and its day start at the same second: one alert used to take the other's place."""
    seed(engine, calm_days(8))
    refresh(engine, MODEL)
    evaluate(engine, MODEL, HOURLY, now=MONDAY + 8 * DAY)
    midnight = MONDAY + 8 * DAY
    seed(engine, hour(midnight, 11, "burst"))
    refresh(engine, MODEL)
    first = evaluate(engine, MODEL, HOURLY, now=midnight + 3000)
    assert {(a.bucket, a.start_utc) for a in first if not a.subject} == {("hour", midnight)}  # the day waits
    # then the day stays raised (2 of 12 an hour: no hour of it is a spike), and the next run is past the cooldown
    seed(engine, [s for h in range(1, 12) for s in hour(midnight + h * 3600, 2, f"raised{h}")])
    refresh(engine, MODEL)
    later = evaluate(engine, MODEL, HOURLY, now=midnight + 12 * 3600)
    assert {(a.bucket, a.start_utc) for a in later} == {("day", midnight)}
    assert all("on 2023-11-28 (UTC)" in a.message for a in later)
    with engine.connect() as connection:
        stored = connection.execute(select(Alert.bucket, Alert.start_utc).where(Alert.subject == "")).all()
    assert sorted(set(stored)) == [("day", midnight), ("hour", midnight)]


SECRET = "XoXoSecretWebhookToken42"


class Receiver:
    """A local webhook endpoint that fails its first `failures` requests with `status`."""

    def __init__(self, failures: int = 0, status: int = 503) -> None:
        self.bodies: list[dict] = []
        self.failures = failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(status)
                else:
                    receiver.bodies.append(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T0001/B0002/{SECRET}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhook_delivery_retries_and_marks_delivered(engine):
    spike_database(engine)
    created = evaluate(engine, MODEL, SETTINGS, now=MONDAY + 11 * DAY)
    receiver = Receiver(failures=2)
    try:
        assert deliver(engine, receiver.url) == len(created)
    finally:
        receiver.close()
    assert len(receiver.bodies) == len(created)
    body = receiver.bodies[0]
    assert body["text"] == body["content"] and body["text"].startswith("civmon alert: ")
    assert deliver(engine, receiver.url) == 0  # nothing left to send


def test_webhook_down_keeps_alerts_for_the_next_run(engine):
    spike_database(engine)
    created = evaluate(engine, MODEL, SETTINGS, now=MONDAY + 11 * DAY)
    assert deliver(engine, "http://127.0.0.1:9/hook", timeout_s=1) == 0
    with engine.connect() as connection:
        assert connection.scalar(select(Alert.delivered_utc).limit(1)) is None
    receiver = Receiver()
    try:
        assert deliver(engine, receiver.url) == len(created)
    finally:
        receiver.close()


@pytest.mark.parametrize(("status", "failure"), [(404, "HTTP 404"), (503, "HTTP 503"), (None, "could not connect")])
def test_a_failed_delivery_logs_the_host_never_the_secret_path(engine, caplog, status, failure):
    spike_database(engine)
    evaluate(engine, MODEL, SETTINGS, now=MONDAY + 11 * DAY)
    receiver = Receiver(failures=10, status=status or 503)
    url = receiver.url if status else f"http://127.0.0.1:9/services/T0001/B0002/{SECRET}"  # nothing listens
    try:
        with caplog.at_level(logging.INFO):
            assert deliver(engine, url, timeout_s=1) == 0
    finally:
        receiver.close()
    assert f"alert webhook http://127.0.0.1/… failed (will retry on the next run): {failure}" in caplog.messages
    assert not [m for m in caplog.messages if SECRET in m or "/services/" in m]


def test_a_host_the_http_client_cannot_parse_fails_delivery_not_the_job(engine, caplog):
    """urllib3 raises LocationParseError, beyond requests' exceptions, for a 70-letter host label."""
    spike_database(engine)
    evaluate(engine, MODEL, SETTINGS, now=MONDAY + 11 * DAY)
    with caplog.at_level(logging.INFO):
        assert deliver(engine, f"http://{'a' * 70}.example/services/T0001/B0002/{SECRET}", timeout_s=1) == 0
    assert any("alert webhook http://" in m and "failed" in m for m in caplog.messages)
    assert not [m for m in caplog.messages if SECRET in m]


def test_alerts_from_before_buckets_were_recorded_get_the_bucket_their_start_tells(db_url):
    from sqlalchemy import text

    from monitor.store import schema
    from monitor.store.db import make_engine

    engine = make_engine(db_url)
    migrate(engine, "0007")
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO communities (id, platform, name, created_utc) VALUES (1, 'reddit', 'x', 0)")
        )
        connection.execute(text("INSERT INTO model_versions (version, name, created_utc) VALUES ('m', 'm', 0)"))
        for kind, subject, start in [
            ("thread", "t1", MONDAY),
            ("hostility", "", MONDAY + 3600),
            ("hostility", "", MONDAY),
        ]:
            connection.execute(
                text(
                    "INSERT INTO alerts (community_id, kind, subject, model_version, start_utc, value, scored, message,"
                    " created_utc) VALUES (1, :kind, :subject, 'm', :start, 0.5, 40, 'old', 0)"
                ),
                {"kind": kind, "subject": subject, "start": start},
            )
    assert schema.upgrade(engine) == ("0007", schema.head_revision())
    with engine.connect() as connection:
        buckets = connection.execute(select(Alert.kind, Alert.start_utc, Alert.bucket).order_by(Alert.id)).all()
        assert buckets == [
            ("thread", MONDAY, "hour"),
            ("hostility", MONDAY + 3600, "hour"),
            ("hostility", MONDAY, None),
        ]
    assert schema_drift(engine, "alerts", "rollup", "model_versions") == []  # the migration builds what they say
    engine.dispose()
