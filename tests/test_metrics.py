"""Rollups, intervals and dynamics on a seeded database, each checked against a value computed by hand."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sqlalchemy import select, update

from monitor.metrics import dynamics, rollups
from monitor.metrics.rollups import bucket_start, rebuild, refresh, series
from monitor.metrics.stats import Estimate, mean, shape, share
from monitor.store.db import transaction
from monitor.store.models import Comment, Community, Rollup, Score

from seed import DAY, MODEL, MONDAY, Seed, seed

HOUR = 3600


def community_id(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(Community.id))


def scope(engine, since=MONDAY, until=MONDAY + 7 * DAY) -> dynamics.Scope:
    return dynamics.Scope(community_id(engine), MODEL, since, until)


def test_day_rollup_by_hand(engine):
    seed(
        engine,
        [
            Seed("c1", MONDAY + 10, 0.1),
            Seed("c2", MONDAY + 20, 0.2),
            Seed("c3", MONDAY + 30, 0.8),
            Seed("c4", MONDAY + 40, 0.9),
            Seed("c5", MONDAY + 50, None),
            Seed("c6", MONDAY + DAY, 0.3),
        ],
    )
    rebuild(engine, MODEL)
    with transaction(engine) as session:
        [day1, day2] = series(session, community_id(engine), MODEL, "day", MONDAY, MONDAY + 2 * DAY)
    assert (day1.start_utc, day1.comments, day1.scored) == (MONDAY, 5, 4)
    # mean 0.5, sd sqrt(0.5/3) = 0.4082, t(0.975, 3) = 3.1824: half-width 0.6496, past the scores' range [0, 1]
    assert day1.hostility.value == pytest.approx(0.5)
    assert (day1.hostility.low, day1.hostility.high) == (0.0, 1.0)
    assert (day1.respect.low, day1.respect.high) == (0.5, 0.5)  # every respect 0.5: no spread
    # 2 of 4 hostile; Wilson: centre (2 + 1.92) / 7.8415 = 0.5, half-width 0.35
    assert day1.hostile_share.value == 0.5
    assert (day1.hostile_share.low, day1.hostile_share.high) == pytest.approx((0.1500, 0.8500), abs=1e-3)
    assert day1.alliance.value == pytest.approx(0.0)  # mean(0.5, 0.5) - 0.5
    assert (day2.comments, day2.hostility.value) == (1, pytest.approx(0.3))


def test_weeks_start_on_monday_and_hours_on_the_hour():
    assert bucket_start(MONDAY + 3 * DAY + 5 * HOUR + 17, "week") == MONDAY
    assert bucket_start(MONDAY - 1, "week") == MONDAY - 7 * DAY
    assert bucket_start(MONDAY + 5 * HOUR + 17, "hour") == MONDAY + 5 * HOUR


def rollup_table(engine) -> list[tuple]:
    columns = [c for c in Rollup.__table__.c if c.key != "id"]
    with engine.connect() as connection:
        rows = connection.execute(select(*columns).order_by(Rollup.bucket, Rollup.start_utc)).all()
    return [tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in rows]


def test_incremental_equals_full_rebuild(engine):
    rng = np.random.default_rng(3)
    seed(
        engine,
        [
            Seed(f"a{i}", MONDAY + int(rng.integers(0, 14 * DAY)), float(rng.random()), first_seen=100)
            for i in range(300)
        ],
    )
    refresh(engine, MODEL)  # the first refresh is a full rebuild
    later = 10**10
    # New comments in new and old buckets, and a rescored old comment, all after the watermark.
    seed(
        engine,
        [
            Seed(f"b{i}", MONDAY + int(rng.integers(0, 21 * DAY)), float(rng.random()), first_seen=later)
            for i in range(50)
        ],
    )
    with transaction(engine) as session:
        target = session.scalar(select(Comment.id).where(Comment.platform_id == "a7"))
        session.execute(update(Score).where(Score.comment_id == target).values(hostility=0.99, scored_utc=later))
    touched = refresh(engine, MODEL)
    incremental = rollup_table(engine)
    rebuild(engine, MODEL)
    assert incremental == rollup_table(engine)
    assert 0 < touched < len(incremental)  # only some buckets were recomputed


def test_a_second_refresh_waits_for_the_first(engine):
    """Two `civmon metrics` at once deleted and inserted the same buckets: on PostgreSQL one died on the unique key."""
    seed(engine, [Seed(f"c{i}", MONDAY + i * HOUR, 0.2, first_seen=100) for i in range(48)])
    outcome: list[BaseException | int] = []

    def second() -> None:
        try:
            outcome.append(rebuild(engine, MODEL))
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            outcome.append(exc)

    with transaction(engine) as first:
        rollups.serialise(first)  # what a running refresh holds until it commits
        rollups._insert_rows(first, *rollups._aggregate(MODEL, "day", 0.5))  # its new rows, not committed yet
        waiting = threading.Thread(target=second)
        waiting.start()
        waiting.join(timeout=2)
        assert waiting.is_alive()  # waiting for the first refresh's commit, not failing on its rows
    waiting.join(timeout=60)
    assert outcome and isinstance(outcome[0], int) and outcome[0] > 0
    assert len(rollup_table(engine)) == outcome[0]


def test_a_mean_interval_by_hand_and_kept_within_the_range():
    # 0.2 and 0.4: mean 0.3, sd 0.1414, t(0.975, 1) = 12.706: half-width 1.2706 reaches past both ends
    assert mean(2, 0.6, 0.2) == Estimate(pytest.approx(0.3), 0.0, 1.0, 2)
    # 0.45, 0.5, 0.55 (x5 each): mean 0.5, sd 0.0423, t(0.975, 14) = 2.1448: half-width 0.0234, inside
    narrow = mean(15, 7.5, 5 * (0.45**2 + 0.5**2 + 0.55**2))
    assert (narrow.low, narrow.high) == pytest.approx((0.4766, 0.5234), abs=1e-4)
    assert mean(1, -0.4, 0.16, bounds=(-1.0, 1.0)) == Estimate(-0.4, -1.0, 1.0, 1)  # one score: the whole range


def test_interval_coverage_on_synthetic_draws():
    rng = np.random.default_rng(7)
    p, n, runs = 0.15, 40, 2000
    hits = sum(e.low <= p <= e.high for k in rng.binomial(n, p, runs) if (e := share(int(k), n)))
    assert 0.93 <= hits / runs <= 0.975
    covered = 0
    for _ in range(runs):
        x = rng.beta(2, 5, 30)  # skewed, like hostility scores; true mean 2/7
        e = mean(len(x), x.sum(), (x**2).sum())
        covered += e.low <= 2 / 7 <= e.high
    assert 0.93 <= covered / runs <= 0.97


def test_reciprocity_by_hand(engine):
    items = [Seed("h", MONDAY, 0.9), Seed("c", MONDAY, 0.1)]
    items += [Seed(f"rh{i}", MONDAY + i, 0.8 if i < 10 else 0.2, parent="h", depth=1) for i in range(20)]
    items += [Seed(f"rc{i}", MONDAY + i, 0.8 if i < 3 else 0.2, parent="c", depth=1) for i in range(30)]
    seed(engine, items)
    with transaction(engine) as session:
        result = dynamics.reciprocity(session, scope(engine))
    assert result.after_hostile.value == 0.5 and result.after_hostile.n == 20
    assert result.after_civil.value == pytest.approx(0.1) and result.after_civil.n == 30
    assert result.ratio == pytest.approx(5.0)


def test_depth_and_small_samples_hidden(engine):
    items = [Seed(f"d0_{i}", MONDAY + i, 0.1) for i in range(20)]
    items += [Seed(f"d1_{i}", MONDAY + i, 0.4, parent="d0_0", depth=1) for i in range(20)]
    items += [Seed(f"d12_{i}", MONDAY + i, 0.7, parent="d1_0", depth=12) for i in range(20)]
    items += [Seed(f"d3_{i}", MONDAY + i, 0.9, parent="d1_0", depth=3) for i in range(5)]  # too few: hidden
    seed(engine, items)
    with transaction(engine) as session:
        depths = dynamics.by_depth(session, scope(engine))
    assert {d: (round(m, 6), n) for d, (m, n) in depths.items()} == {0: (0.1, 20), 1: (0.4, 20), 10: (0.7, 20)}


def test_derailed_thread_found_with_its_turn(engine):
    derailing = [
        Seed(f"x{i}", MONDAY + i, 0.1 if i < 10 else (0.9 if i in (12, 15, 18, 21, 24) else 0.2), thread="tx")
        for i in range(25)
    ]  # opening 0% hostile, later 5/15 = 33%
    civil_start_kept = [Seed(f"y{i}", MONDAY + i, 0.1, thread="ty") for i in range(25)]
    hostile_opening = [
        Seed(f"z{i}", MONDAY + i, 0.9 if i in (1, 2) or i > 12 else 0.1, thread="tz") for i in range(25)
    ]  # opening 20% hostile: not a derailment
    seed(engine, derailing + civil_start_kept + hostile_opening)
    started_before = scope(engine)  # the seeded threads start with their first comment, on MONDAY
    later_period = scope(engine, since=MONDAY + DAY)
    with transaction(engine) as session:
        [found] = dynamics.derailed(session, started_before)
        assert dynamics.derailed(session, later_period) == []  # a thread counts in the period it started
    assert (found.thread, found.opening_share, found.comments, found.turn_comment) == ("tx", 0.0, 25, "x12")
    assert found.later_share == pytest.approx(5 / 15)


def test_polarisation_and_concentration(engine):
    camps = [Seed(f"p{i}", MONDAY + i, 0.05 if i % 2 else 0.95, author=f"u{i % 100}") for i in range(200)]
    seed(engine, camps)
    rebuild(engine, MODEL)
    period = scope(engine)  # before the transaction: a second connection would wait for its write lock
    with transaction(engine) as session:
        polarised = dynamics.polarisation(session, period)
        concentrated = dynamics.concentration(session, period)
    assert polarised.bimodality > 5 / 9 and polarised.sd == pytest.approx(0.45, abs=0.01)
    # Hostile comments come from the 50 even-numbered authors, 2 each: the top 1 author of 100 wrote 2 of 100.
    assert (concentrated.authors, concentrated.hostile_comments) == (100, 100)
    assert concentrated.top_1_percent == pytest.approx(0.02) and concentrated.top_10_percent == pytest.approx(0.2)


def test_unimodal_scores_are_not_called_polarised():
    x = np.random.default_rng(1).beta(2, 8, 500)
    assert shape(len(x), x.sum(), (x**2).sum(), (x**3).sum(), (x**4).sum()).bimodality < 5 / 9


def test_rebuild_writes_one_row_per_bucket(engine):
    times = [MONDAY + i * 600 for i in range(2000)]
    seed(engine, [Seed(f"s{i}", t, 0.3) for i, t in enumerate(times)])
    written = rollups.rebuild(engine, MODEL)
    expected = sum(len({bucket_start(t, b) for t in times}) for b in ("hour", "day", "week"))
    assert written == expected == len(rollup_table(engine))
