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
from monitor.metrics.rollups import rebuild
from monitor.store.models import Alert, Rollup

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
