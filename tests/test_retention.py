"""What the store keeps of the text: `[privacy] keep_bodies` and `retention_days`, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from monitor.config import PrivacySettings
from monitor.privacy import Pseudonymiser
from monitor.records import CommentRecord, ThreadRecord
from monitor.scoring.alliance import AllianceScorer
from monitor.scoring.pending import score_pending
from monitor.store.db import transaction
from monitor.store.models import Comment, Score, Thread
from monitor.store.retention import purge
from monitor.store.upsert import Writer

from seed import COMMUNITY, DAY, MONDAY, Seed, seed

KEPT = PrivacySettings(pseudonymise_authors=False)
NOT_KEPT = PrivacySettings(pseudonymise_authors=False, keep_bodies=False)


def write(engine, privacy, body="the submission's text"):
    with transaction(engine) as session:
        Writer(session, privacy, Pseudonymiser(None)).write(
            COMMUNITY,
            [ThreadRecord("t1", "a title", "op", MONDAY, body=body)],
            [CommentRecord("c0", "t1", "t1", 0, "a", "a comment", MONDAY + 60)],
        )


def bodies(engine):
    with engine.connect() as connection:
        threads = dict(connection.execute(select(Thread.platform_id, Thread.body)).all())
        comments = dict(connection.execute(select(Comment.platform_id, Comment.body)).all())
        titles = set(connection.scalars(select(Thread.title)))
    return threads, comments, titles


def test_thread_bodies_are_not_stored_when_bodies_are_not_kept(engine):
    write(engine, NOT_KEPT)
    threads, comments, titles = bodies(engine)
    assert threads == {"t1": None} and titles == {"a title"}  # a thread is shown by its title
    assert comments == {"c0": "a comment"}  # until it is scored: scoring drops it then


def test_a_thread_collected_again_loses_the_body_stored_before_bodies_were_dropped(engine):
    write(engine, KEPT)
    write(engine, NOT_KEPT)
    assert bodies(engine)[0] == {"t1": None}


def seed_scored(engine):
    """c0 scored, c1 not scored yet, c2 scored then edited (stale): stored while bodies were kept."""
    seed(engine, [Seed("c0", MONDAY, 0.2), Seed("c1", MONDAY, None), Seed("c2", MONDAY, 0.4)])
    with transaction(engine) as session:
        session.execute(update(Thread).values(body="the submission's text"))
        c2 = session.scalar(select(Comment.id).where(Comment.platform_id == "c2"))
        session.execute(update(Score).where(Score.comment_id == c2).values(stale=True))


def test_retention_purges_what_was_kept_before_bodies_were_dropped(engine):
    seed_scored(engine)
    assert purge(engine, NOT_KEPT, now=MONDAY + DAY) == (1, 0)
    threads, comments, titles = bodies(engine)
    assert threads == {"t1": None} and titles == {"title t1"}
    assert comments == {"c0": None, "c1": "text of c1", "c2": "text of c2"}  # those two wait for scoring


def test_scoring_purges_what_was_kept_before_bodies_were_dropped(engine, untrained_model):
    """`civmon score` after `keep_bodies = false`: comments it scored before keep no text, though none is pending
    (the retention job, which purged them till now, may run only days later)."""
    seed_scored(engine)
    scorer = AllianceScorer(untrained_model, device="cpu", runtime="torch")
    score_pending(engine, scorer, KEPT)
    assert bodies(engine)[1] == {"c0": "text of c0", "c1": "text of c1", "c2": "text of c2"}
    summary = score_pending(engine, scorer, NOT_KEPT)
    assert summary.scored == 0  # nothing was pending: the purge is not scoring's side effect
    threads, comments, titles = bodies(engine)
    assert threads == {"t1": None} and titles == {"title t1"}
    assert comments == {"c0": None, "c1": None, "c2": None}


def test_scoring_leaves_the_text_a_new_model_has_yet_to_score(engine, untrained_model):
    """c0 and c2 were scored by an older model only: the new one still needs their text (c0 it scores now)."""
    seed_scored(engine)
    score_pending(engine, AllianceScorer(untrained_model, device="cpu", runtime="torch"), NOT_KEPT, limit=1)
    assert bodies(engine)[1] == {"c0": None, "c1": "text of c1", "c2": "text of c2"}


@pytest.mark.parametrize("days", [None, 1, 2])  # a comment exactly `days` old is not past them yet
def test_retention_keeps_every_body_while_bodies_are_kept_and_young(engine, days):
    seed_scored(engine)
    assert purge(engine, PrivacySettings(retention_days=days), now=MONDAY + DAY) == (0, 0)
    threads, comments, _ = bodies(engine)
    assert threads == {"t1": "the submission's text"} and None not in comments.values()


def test_retention_days_purge_old_bodies_once_scored(engine, untrained_model):
    """c1 and c2 (edited) wait for a score: purged first, they could never be scored (an imported year-old dump)."""
    seed_scored(engine)
    assert purge(engine, PrivacySettings(retention_days=1), now=MONDAY + DAY + 1) == (1, 0)
    threads, comments, titles = bodies(engine)
    assert threads == {"t1": None} and titles == {"title t1"}
    assert comments == {"c0": None, "c1": "text of c1", "c2": "text of c2"}
    summary = score_pending(engine, AllianceScorer(untrained_model, device="cpu", runtime="torch"), KEPT)
    assert summary.scored == 2  # c1 and c2, kept for it
    assert purge(engine, PrivacySettings(retention_days=1), now=MONDAY + DAY + 1) == (2, 0)
    assert set(bodies(engine)[1].values()) == {None}
