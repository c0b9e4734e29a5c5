"""`civmon export` and `civmon metrics` through the real command, on a seeded database."""

from __future__ import annotations

import csv

import pyarrow.parquet as pq

from monitor.metrics.rollups import rebuild

from conftest import civmon
from seed import DAY, MODEL, MONDAY, Seed, seed


def civmon_on(tmp_path, db_url, *args, keep_bodies=True):
    env = {"CIVMON_DATABASE__URL": db_url, "CIVMON_PRIVACY__KEEP_BODIES": str(keep_bodies).lower()}
    return civmon(tmp_path, *args, env=env)


def seeded(engine):
    seed(
        engine,
        [Seed(f"c{i}", MONDAY + i * 3600, 0.1 * (i % 10), author=f"user{i % 3}") for i in range(48)]
        + [Seed("unscored", MONDAY + 5, None)],
    )
    rebuild(engine, MODEL)


def test_export_csv_and_parquet_with_dictionary(engine, db_url, tmp_path):
    seeded(engine)
    result = civmon_on(tmp_path, db_url, "export", "--out", "out", "--since", "2023-11-20", "--until", "2023-11-21")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    with (out / "comments.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 25  # 24 hourly comments on the first day, and the unscored one
    assert {r["comment_id"] for r in rows} >= {"c0", "c23", "unscored"} and "c24" not in {r["comment_id"] for r in rows}
    scored = next(r for r in rows if r["comment_id"] == "c3")
    assert float(scored["hostility"]) == 0.1 * 3 and scored["model_version"] == MODEL and scored["body"] == "text of c3"
    assert scored["author"] == "user0" and scored["insult"] == ""
    table = pq.read_table(out / "comments.parquet")
    assert table.num_rows == 25 and table.schema.field("hostility").type == "double"
    rollups = pq.read_table(out / "rollups.parquet").to_pylist()
    day = next(r for r in rollups if r["bucket"] == "day" and r["start_utc"] == MONDAY)
    assert (day["comments"], day["scored"]) == (25, 24) and day["hostility_low"] < day["hostility"] < day[
        "hostility_high"
    ]
    dictionary = (out / "DATA_DICTIONARY.md").read_text()
    assert "| author | keyed-hash pseudonym" in dictionary and "Wilson" in dictionary


def test_export_leaves_bodies_out_unless_kept(engine, db_url, tmp_path):
    seeded(engine)
    result = civmon_on(tmp_path, db_url, "export", "--out", "out", "--format", "csv", keep_bodies=False)
    assert result.returncode == 0, result.stderr
    header = (tmp_path / "out" / "comments.csv").read_text().splitlines()[0]
    assert "body" not in header.split(",") and not (tmp_path / "out" / "comments.parquet").exists()
    assert "| body |" not in (tmp_path / "out" / "DATA_DICTIONARY.md").read_text()


def test_export_of_an_unscored_store_says_what_to_do(engine, db_url, tmp_path):
    result = civmon_on(tmp_path, db_url, "export", "--out", "out")
    assert result.returncode == 2 and "civmon score" in result.stderr


def test_metrics_command_refreshes_rollups(engine, db_url, tmp_path):
    seed(engine, [Seed(f"c{i}", MONDAY + i * DAY // 4, 0.2) for i in range(12)])
    result = civmon_on(tmp_path, db_url, "metrics")
    assert result.returncode == 0, result.stderr
    assert f"rollups for {MODEL}:" in result.stdout and "0 new alerts" in result.stdout
