"""`civmon score` on the store: pending comments scored once per model version, edits rescored,
deleted and non-English comments not scored as English, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select, update

from monitor.config import PrivacySettings
from monitor.metrics.job import current_version
from monitor.records import ItemState
from monitor.scoring.alliance import AllianceScorer
from monitor.scoring.pending import EDITED, count_pending, score_pending
from monitor.store.db import transaction
from monitor.store.models import Comment, ModelVersion, Score
from monitor.store.upsert import Writer

from records import COMMUNITY, comments, edited, gone, thread

BODIES = [
    "Thanks for explaining, that was really helpful.",
    "You are clueless and should stop posting.",
    "> you are clueless\n\nI disagree with the quote above, politely.",
    "Das ist eine schlechte Idee und das weißt du ganz genau.",
    "I see your point about the budget, let's talk about it tomorrow.",
]


@pytest.fixture(scope="module")
def scorer(untrained_model):
    return AllianceScorer(untrained_model, device="cpu", runtime="torch")


def write(engine, privacy, pseudonymiser, batch):
    with transaction(engine) as session:
        Writer(session, privacy, pseudonymiser).write(COMMUNITY, [thread()], batch)


@pytest.fixture
def stored(engine, privacy, pseudonymiser):
    batch = [replace(c, body=body) for c, body in zip(comments(len(BODIES)), BODIES, strict=True)]
    write(engine, privacy, pseudonymiser, [*batch, gone(comments(1, first=9)[0], ItemState.DELETED)])
    return batch


def scores(engine, version):
    with engine.connect() as connection:
        rows = connection.execute(select(Comment.platform_id, Score).join(Score).where(Score.model_version == version))
        return {r.platform_id: r for r in rows}


def test_scores_every_pending_comment_once(engine, privacy, stored, scorer):
    progress = []
    summary = score_pending(engine, scorer, privacy, lambda done, total: progress.append((done, total)), batch=2)
    assert (summary.scored, summary.skipped.total()) == (4, 1)
    assert progress[-1] == (5, 5) and len(progress) == 3
    assert any("not English" in reason for reason in summary.skipped)
    assert EDITED not in summary.skipped  # nothing was edited meanwhile: no such line in the summary
    rows = scores(engine, scorer.version)
    assert set(rows) == {"c0", "c1", "c2", "c3", "c4"}  # the deleted comment c9 has no text: not scored
    assert rows["c3"].language == "de" and rows["c3"].hostility is None
    assert "not English" in rows["c3"].skip_reason and rows["c0"].skip_reason is None  # why, kept with the row
    assert all(0 <= rows[c].hostility <= 1 and rows[c].alliance is not None for c in ("c0", "c1", "c2", "c4"))
    assert rows["c0"].insult is None  # a dimension the model lacks stays NULL
    again = score_pending(engine, scorer, privacy)
    assert again.scored == again.skipped.total() == 0
    with engine.connect() as connection:
        assert connection.scalar(select(ModelVersion.name)) == "test-untrained"


def test_edited_comment_is_rescored(engine, privacy, pseudonymiser, stored, scorer):
    score_pending(engine, scorer, privacy)
    before = scores(engine, scorer.version)["c1"].hostility
    write(engine, privacy, pseudonymiser, [edited(stored[1], "Sorry, I was rude. You made a fair point.")])
    with transaction(engine) as session:
        assert count_pending(session, scorer.version) == 1
    summary = score_pending(engine, scorer, privacy)
    assert summary.scored == 1
    after = scores(engine, scorer.version)["c1"]
    assert after.stale is False and after.hostility != before


def test_a_comment_edited_while_the_model_works_stays_pending(
    engine, privacy, pseudonymiser, stored, scorer, monkeypatch
):
    score = scorer.score

    def collector_edits_meanwhile(texts):
        monkeypatch.setattr(scorer, "score", score)
        write(engine, privacy, pseudonymiser, [edited(stored[1], "On second thought, you make a fair point.")])
        return score(texts)

    monkeypatch.setattr(scorer, "score", collector_edits_meanwhile)
    summary = score_pending(engine, scorer, privacy)
    assert summary.scored == 3 and summary.skipped[EDITED] == 1  # not counted as scored
    assert "c1" not in scores(engine, scorer.version)
    assert score_pending(engine, scorer, privacy).scored == 1  # its new text, next run


def test_another_model_version_keeps_the_old_scores(engine, privacy, stored, scorer, untrained_model, tmp_path):
    import shutil

    score_pending(engine, scorer, privacy)
    other_folder = tmp_path / "other"
    shutil.copytree(untrained_model, other_folder)
    (other_folder / "model.json").write_text(
        (other_folder / "model.json").read_text().replace("test-untrained", "other")
    )
    other = AllianceScorer(other_folder, device="cpu", runtime="torch")
    assert score_pending(engine, other, privacy).scored == 4
    with engine.connect() as connection:
        per_version = dict(
            connection.execute(select(Score.model_version, func.count()).group_by(Score.model_version)).all()
        )
    assert per_version == {scorer.version: 5, other.version: 5}
    # the store follows the model a scorer last started with: switching back is followed at the next pass
    with transaction(engine) as session:
        for version, used in ((scorer.version, 100), (other.version, 200)):
            session.execute(update(ModelVersion).where(ModelVersion.version == version).values(used_utc=used))
        assert current_version(session) == other.version
    assert score_pending(engine, scorer, privacy).scored == 0
    with transaction(engine) as session:
        assert current_version(session) == scorer.version


def test_bodies_dropped_after_scoring_when_not_kept(engine, pseudonymiser, stored, scorer, tmp_path):
    forgetful = PrivacySettings(key_file=tmp_path / "k", keep_bodies=False)
    score_pending(engine, scorer, forgetful, limit=2)
    with engine.connect() as connection:
        bodies = dict(connection.execute(select(Comment.platform_id, Comment.body)).all())
    assert bodies["c0"] is None and bodies["c1"] is None and bodies["c2"] == BODIES[2]


def test_a_body_another_tool_stored_as_bytes_that_are_not_utf8_is_scored_not_fatal(
    tmp_path, privacy, pseudonymiser, scorer
):
    """SQLite stores whatever bytes it is given: one such body stopped every `civmon score`, quoting its text."""
    from sqlalchemy import text

    from monitor.store import schema
    from monitor.store.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'civmon.db'}")
    schema.upgrade(engine)
    write(engine, privacy, pseudonymiser, comments(3))
    with engine.begin() as connection:  # "café déjà vu" in Latin-1
        connection.execute(text("UPDATE comments SET body = CAST(X'636166E92064E96AE0207675' AS TEXT) WHERE id = 1"))
    summary = score_pending(engine, scorer, privacy)
    assert summary.scored == 3
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT body FROM comments WHERE id = 1")) == "caf\ufffd d\ufffdj\ufffd vu"
    engine.dispose()
