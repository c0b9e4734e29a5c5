"""`civmon score --worker`: many scoring processes on one PostgreSQL store of real comments, one of them
SIGKILLed mid-batch; SQLite refuses workers; rollups stay right while a worker's write commits late."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from sqlalchemy import func, select, text

from monitor.bench.workers import seed, start_worker, worker_config
from monitor.config import PrivacySettings
from monitor.metrics import rollups
from monitor.scoring.alliance import AllianceScorer
from monitor.scoring.pending import count_pending, prepare_store, write_scores
from monitor.scoring.results import score_texts
from monitor.scoring.workers import claim, holding
from monitor.store.db import database_now, make_engine, scratch_postgres_database, transaction
from monitor.store.models import Comment, Rollup, Score, ScoreClaim

from conftest import POSTGRES_URL, civmon, shared_data, start_civmon, wait_for

GOEMOTIONS = shared_data() / "goemotions" / "train.tsv"
COMMENTS = 400


def real_texts(count: int) -> list[str]:
    if not GOEMOTIONS.exists():
        pytest.skip(f"real comments not found: {GOEMOTIONS} (../shared/data)")
    with GOEMOTIONS.open(encoding="utf-8") as lines:
        return [line.split("\t")[0] for line, _ in zip(lines, range(count), strict=False)]


@pytest.fixture
def postgres_url(postgres_available) -> Iterator[str]:
    with scratch_postgres_database(POSTGRES_URL) as url:
        yield url


def worker_pids(scheduler: psutil.Process) -> set[int]:
    """The live `civmon score --worker` children, no other child and no zombie: counting every child, a CI
    run took something else for the restarted worker and stopped `civmon run` before the restart."""
    pids = set()
    for child in scheduler.children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "--worker" in child.cmdline():
                pids.add(child.pid)
        except psutil.NoSuchProcess:
            continue  # it exited between the listing and the look
    return pids


def claims_of(engine, pid: int) -> set[int]:
    with engine.connect() as connection:
        return set(connection.scalars(select(ScoreClaim.comment_id).where(ScoreClaim.holder.like(f"% pid {pid} %"))))


@pytest.mark.postgres
def test_three_workers_one_killed_mid_batch_score_every_comment_once(postgres_url, tmp_path, untrained_model):
    engine = make_engine(postgres_url)
    seed(engine, real_texts(COMMENTS))
    model = {"name": str(untrained_model), "runtime": "torch", "fallback_to_default": False}
    config = worker_config(tmp_path, postgres_url, model, {"claim_batch": 8, "lease_seconds": 5, "poll_seconds": 0.2})
    victim, *survivors = [start_worker(config, 1, "--exit-when-idle") for _ in range(3)]
    wait_for(lambda: claims_of(engine, victim.pid), every=0.02)  # the kill must land while it holds claims
    victim.send_signal(signal.SIGKILL)  # mid-batch: its claims are committed, its scores not yet
    victim.wait()
    orphaned = claims_of(engine, victim.pid)
    assert orphaned

    outputs = [p.communicate(timeout=120)[0] for p in survivors]
    assert [p.returncode for p in survivors] == [0, 0], outputs
    assert all("Traceback" not in output for output in outputs)
    with engine.connect() as connection:
        version = connection.scalar(select(Score.model_version).distinct())
        per_comment = dict(connection.execute(select(Score.comment_id, func.count()).group_by(Score.comment_id)).all())
        comments = set(connection.scalars(select(Comment.id)))
        assert connection.scalar(select(func.count()).select_from(ScoreClaim)) == 0  # none left held
    assert set(per_comment) == comments and set(per_comment.values()) == {1}  # every comment, one score each
    with transaction(engine) as session:
        assert count_pending(session, version) == 0
    # the killed worker's lease ran out and a survivor took its claims over, naming it
    takeovers = [line for output in outputs for line in output.splitlines() if "took over" in line]
    assert any(f"pid {victim.pid} " in line for line in takeovers), outputs
    assert sum(int(re.search(r"took over (\d+) claims", line).group(1)) for line in takeovers) >= len(orphaned)
    assert all("dropped" not in output for output in outputs)  # nobody outlived its lease: no work was wasted
    engine.dispose()


@pytest.mark.postgres
def test_a_plain_score_beside_a_worker_claims_as_it_does(postgres_url, tmp_path, untrained_model):
    """`civmon score` (or `civmon run`'s score job) scored what it found pending, claims or none: beside a worker,
    most comments were scored twice."""
    engine = make_engine(postgres_url)
    seed(engine, real_texts(COMMENTS // 2))
    model = {"name": str(untrained_model), "runtime": "torch", "fallback_to_default": False}
    config = worker_config(tmp_path, postgres_url, model, {"claim_batch": 8, "lease_seconds": 30, "poll_seconds": 0.2})
    worker = start_worker(config, 1, "--exit-when-idle")
    plain = subprocess.Popen(
        [sys.executable, "-m", "monitor", "score", "--config", str(config)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    outputs = [p.communicate(timeout=180)[0] for p in (worker, plain)]
    assert [worker.returncode, plain.returncode] == [0, 0], outputs
    with engine.connect() as connection:
        per_comment = dict(connection.execute(select(Score.comment_id, func.count()).group_by(Score.comment_id)).all())
    assert len(per_comment) == COMMENTS // 2 and set(per_comment.values()) == {1}, outputs
    scored = [int(re.search(r"([\d,]+) comments scored", output).group(1).replace(",", "")) for output in outputs]
    assert sum(scored) == COMMENTS // 2, outputs  # none scored twice (the second write replaced the first)
    engine.dispose()


@pytest.mark.postgres
def test_run_supervises_its_workers_restarts_a_dead_one_and_stops_them(postgres_url, tmp_path, untrained_model):
    engine = make_engine(postgres_url)
    seed(engine, real_texts(120))
    model = {"name": str(untrained_model), "runtime": "torch", "fallback_to_default": False}
    scoring = {"workers": 2, "claim_batch": 16, "lease_seconds": 3, "poll_seconds": 0.2}
    config = worker_config(tmp_path, postgres_url, model, scoring)
    with config.open("a") as file:
        file.write("[schedule]\nmetrics_minutes = 0.05\n")
    run = start_civmon(tmp_path, "run")
    scheduler = psutil.Process(run.pid)
    wait_for(lambda: len(worker_pids(scheduler)) == 2)
    first = worker_pids(scheduler)
    assert len(first) == 2, first
    with transaction(engine) as session:
        wait_for(lambda: session.scalar(select(func.count()).select_from(Score)) == 120)
    os.kill(min(first), signal.SIGKILL)
    wait_for(lambda: len(pids := worker_pids(scheduler)) == 2 and pids != first)  # a new one, after RESTART_S
    scored = select(func.count()).select_from(Score).where(Score.hostility.is_not(None))
    in_rollups = select(func.sum(Rollup.scored)).where(Rollup.bucket == "day")
    with engine.connect() as connection:  # the metrics job rolls up what the workers wrote
        wait_for(lambda: connection.execute(in_rollups).scalar() == connection.execute(scored).scalar())
        jobs = set(connection.scalars(text("SELECT id FROM apscheduler_jobs")))
    run.send_signal(signal.SIGTERM)
    output, _ = run.communicate(timeout=180)
    assert run.returncode == 0, output
    assert jobs == {"metrics", "retention"}  # no score job: the workers score
    assert f"pid {min(first)}) exited with status -9" in output, output
    assert "2 scoring workers stopped" in output, output  # the restarted one and the survivor
    assert "Traceback" not in output
    engine.dispose()


def test_sqlite_refuses_workers(tmp_path):
    (tmp_path / "civmon.toml").write_text(f'[database]\nurl = "sqlite:///{tmp_path / "civmon.db"}"\n')
    worker = civmon(tmp_path, "score", "--worker")
    assert worker.returncode == 2
    assert "civmon score --worker needs PostgreSQL" in worker.stderr and "postgresql+psycopg://" in worker.stderr
    assert "Traceback" not in worker.stderr

    with (tmp_path / "civmon.toml").open("a") as config:
        config.write("[scoring]\nworkers = 2\n")
    run = civmon(tmp_path, "run")
    assert run.returncode == 2 and "[scoring] workers = 2 needs PostgreSQL" in run.stderr
    check = civmon(tmp_path, "config", "check")
    assert check.returncode == 1 and "scoring.workers: [scoring] workers = 2 needs PostgreSQL" in check.stdout


@pytest.mark.postgres
def test_rollups_count_a_worker_write_committed_after_a_refresh(postgres_url, untrained_model):
    """A worker stamps its scores as it writes them; a refresh that looks while that write is not yet
    committed must not move its watermark past them, or the next refresh skips their buckets."""
    engine = make_engine(postgres_url)
    seed(engine, real_texts(20))
    scorer = AllianceScorer(untrained_model, device="cpu", runtime="torch")
    privacy = PrivacySettings(key_file=Path("unused.key"))
    with transaction(engine) as session:
        prepare_store(session, scorer, privacy)
    rollups.refresh(engine, scorer.version)  # the first refresh: a rebuild, nothing scored yet
    claimed = claim(engine, scorer.version, "slow worker", 20, lease_s=60)
    results = score_texts(scorer, [r.body for r in claimed.rows])
    with transaction(engine) as session:  # the slow worker's write transaction
        held = holding(scorer.version, "slow worker")(session, [r.id for r in claimed.rows])
        write_scores(session, scorer.version, claimed.rows, results, privacy, database_now(session))
        time.sleep(2.2)  # the refresh below starts seconds after the scores' stamp
        rollups.refresh(engine, scorer.version)  # sees neither these scores nor the claims' deletion
    assert len(held) == 20
    rollups.refresh(engine, scorer.version)
    with engine.connect() as connection:
        in_rollups = connection.scalar(select(func.sum(Rollup.scored)).where(Rollup.bucket == "day"))
        scored = connection.scalar(select(func.count()).select_from(Score).where(Score.hostility.is_not(None)))
    assert scored > 0 and in_rollups == scored
    engine.dispose()
