"""`civmon backfill` on a real Dask LocalCluster of two worker processes: real Reddit comments (the recorded
API traffic as dumps, the incivility set as a corpus), workers and whole runs killed, damaged inputs."""

from __future__ import annotations

import csv
import json
import os
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import zstandard
from distributed import Client, LocalCluster
from sqlalchemy import func, select

from monitor.backfill.partitions import LOCK, MANIFEST
from monitor.backfill.run import Options, Summary, backfill
from monitor.config import DatabaseSettings, ModelSettings, PrivacySettings, Settings
from monitor.errors import CivmonError
from monitor.metrics.job import run_metrics
from monitor.scoring.base import DIMENSIONS
from monitor.store import schema
from monitor.store.db import make_engine
from monitor.store.models import Comment, Score

from conftest import TEST_KEY, civmon, shared_data, start_civmon
from recordings import PRAW_CASSETTES, recorded

INCIVILITY = shared_data() / "reddit-incivility-davidson2020" / "incivility_coded_0302.test.csv"


@pytest.fixture(scope="module")
def dump_lines() -> list[bytes]:
    """1,000 real Reddit lines from the recorded traffic, as a dump has them: a few submissions, then comments
    (ten partitions of 100: a run lasts long enough to be killed midway)."""
    if not PRAW_CASSETTES.is_dir():
        pytest.skip(f"recorded Reddit traffic not found at {PRAW_CASSETTES}")
    items = [i for kind in ("t3", "t1") for i in recorded(kind).values() if "<" not in i.get("subreddit", "<")]
    return [json.dumps(i).encode() for i in items[880:1880]]


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as dask:
            yield dask


@pytest.fixture
def settings(untrained_model: Path, tmp_path: Path) -> Settings:
    key = tmp_path / "civmon.key"
    key.write_bytes(TEST_KEY)
    key.chmod(0o600)
    return Settings(
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'civmon.db'}"),
        model=ModelSettings(name=str(untrained_model), device="cpu", runtime="onnx-int8"),
        privacy=PrivacySettings(key_file=key),
    )


def zst(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(zstandard.ZstdCompressor(level=3).compress(b"\n".join(lines) + b"\n"))
    return path


def output(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder).sort_values(["source_file", "source_line"], ignore_index=True)


def lines_of(frame: pd.DataFrame, name: str) -> list[int]:
    return frame[frame.source_file == name].source_line.tolist()


def in_background(work: Any) -> tuple[threading.Thread, list[Any]]:
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(work()), daemon=True)
    thread.start()
    return thread, done


def wait_for_partition(folder: Path, timeout: float = 120) -> int:
    """Block until the first partition file is written; how many are written then."""
    deadline = time.monotonic() + timeout
    while not (written := list(folder.glob("*/part-*.parquet"))):
        assert time.monotonic() < deadline, "no partition was written"
        time.sleep(0.05)
    return len(written)


def test_a_worker_killed_mid_run_loses_no_row_and_scores_none_twice(client, settings, dump_lines, tmp_path):
    dump = zst(tmp_path / "RC_recorded.zst", dump_lines)
    options = Options([dump], tmp_path / "out", partition_rows=100)
    thread, result = in_background(lambda: backfill(settings, options, lambda line: None, client=client))
    written = wait_for_partition(tmp_path / "out")
    before = set(client.run(os.getpid).values())
    os.kill(next(iter(before)), signal.SIGKILL)  # mid-run: the other partitions are still being scored
    with pytest.raises(CivmonError, match="another civmon backfill is using"):  # it would delete the first's .tmp
        backfill(settings, options, lambda line: None, client=client)
    thread.join(timeout=240)
    summary: Summary = result[0]

    assert written < summary.partitions == 10
    assert summary.failed == 0 and summary.rows == len(dump_lines)
    frame = output(tmp_path / "out")
    assert lines_of(frame, dump.name) == list(range(1, len(dump_lines) + 1))  # every line once
    assert set(client.run(os.getpid).values()) != before  # the killed worker was replaced, and its tasks rerun
    comments = frame[frame.comment_id.notna()]
    assert comments.hostility.notna().sum() > 800
    assert comments.author.dropna().str.fullmatch("[0-9a-f]{16}").all()  # pseudonyms, with the configured key
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_a_bad_out_or_scheduler_is_refused_before_any_counting(settings, tmp_path):
    (tmp_path / "corpus.csv").write_text("text\nhello\n")
    said: list[str] = []
    for out in (tmp_path / "corpus.csv" / "sub", Path("/proc/nope")):
        with pytest.raises(CivmonError, match=f"cannot write --out {out}"):
            backfill(settings, Options([tmp_path / "corpus.csv"], out), said.append)
    with pytest.raises(CivmonError, match="corpus.csv is a file"):
        backfill(settings, Options([tmp_path / "corpus.csv"], tmp_path / "corpus.csv"), said.append)
    for address in ("nonsense", "tcp://bob:secret@127.0.0.1:1"):  # not an address; one that asks for no password
        options = Options([tmp_path / "corpus.csv"], tmp_path / "out", scheduler=address)
        with pytest.raises(CivmonError, match="cannot reach the Dask scheduler at") as refused:
            backfill(settings, options, said.append)
        assert "secret" not in str(refused.value)
    assert said == []  # nothing counted, no cluster started


def test_a_relative_out_resumes_a_damaged_partition_and_lists_a_corpus_s_bad_lines(
    client, settings, dump_lines, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the workers' working folder is another
    (tmp_path / "out").mkdir(mode=0o755)
    zst(tmp_path / "RC_recorded.zst", dump_lines[:200])
    (tmp_path / "corpus.jsonl").write_text('{"text": "a kind word"}\nnot json at all\n{"body": "no text"}\n')
    options = Options([Path("RC_recorded.zst"), Path("corpus.jsonl")], Path("out"), partition_rows=100)

    first = backfill(settings, options, lambda line: None, client=client)
    assert first.partitions == 3 and first.failed == 0 and first.bad == 2
    assert first.problems == [
        "corpus.jsonl:2: bad line: not JSON (Expecting value)",
        "corpus.jsonl:3: bad line: no 'text' field",
    ]
    part = tmp_path / "out" / "RC_recorded.zst" / "part-000001.parquet"
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])  # an rsync stopped partway

    said: list[str] = []
    again = backfill(settings, options, said.append, client=client)
    assert again.already_written == 2 and again.rows == 203 and again.bad == 2
    assert [line for line in said if "damaged" in line] == [
        f"{part} is damaged (ArrowInvalid('Parquet magic bytes not found in footer. Either the file is corrupted "
        "or this is not a parquet file.')): removed, and scored again"
    ]
    frame = output(tmp_path / "out")
    assert lines_of(frame, "RC_recorded.zst") == list(range(1, 201))
    # pseudonyms and ids: the researcher's only, as exports are, though --out was made beforehand
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "out").rglob("*.parquet")} == {0o600}
    assert stat.S_IMODE((tmp_path / "out" / "corpus.jsonl").stat().st_mode) == 0o700
    assert frame[frame.source_file == "corpus.jsonl"].skip_reason.tolist()[1:] == [
        "bad line: not JSON (Expecting value)",
        "bad line: no 'text' field",
    ]


def test_a_damaged_dump_and_a_bad_line_are_reported_and_the_rest_is_scored_and_stored(
    client, settings, dump_lines, tmp_path
):
    packed = zstandard.ZstdCompressor(level=3).compress(b"\n".join(dump_lines[:300]) + b"\n")
    cut = tmp_path / "RC_cut.zst"
    cut.write_bytes(packed[: len(packed) * 2 // 3])  # a download cut short, inside its one frame
    lines = dump_lines[:200]
    lines[4] = b'{"id": "abc", "link_id": "t3_x", "subreddit": "AskHistorians", "created_utc": true}'
    lines[150] = b"{not json"
    bad = tmp_path / "RC_bad.ndjson"
    bad.write_bytes(b"\n".join(lines) + b"\n")
    schema.upgrade(make_engine(settings.database.url))
    options = Options([cut, bad], tmp_path / "out", partition_rows=100, into_store=True)

    summary = backfill(settings, options, lambda line: None, client=client)

    assert summary.failed == 0 and summary.bad == 2
    assert summary.problems == [
        "RC_bad.ndjson:5: bad line: wrong fields: created_utc: a boolean, not a number",
        "RC_bad.ndjson:151: bad line: not JSON (Expecting property name enclosed in double quotes, column 2)",
    ]
    [damage] = summary.damaged
    assert damage.startswith("RC_cut.zst: after line ") and "truncated at byte" in damage
    kept = int(damage.split("after line ")[1].split(":")[0].replace(",", ""))
    assert 100 < kept < 300
    frame = output(tmp_path / "out")
    assert lines_of(frame, "RC_bad.ndjson") == list(range(1, 201))
    assert lines_of(frame, "RC_cut.zst") == list(range(1, kept + 1))
    bad_rows = frame[frame.skip_reason.str.startswith("bad line", na=False)]
    assert bad_rows.source_line.tolist() == [5, 151] and bad_rows[list(DIMENSIONS)].isna().all().all()

    engine = make_engine(settings.database.url)
    with engine.connect() as connection:
        stored = connection.scalar(select(func.count()).select_from(Comment).where(Comment.state == "live"))
        scores = dict(
            connection.execute(
                select(Comment.platform_id, Score.hostility).join(Score, Score.comment_id == Comment.id)
            ).all()
        )
    scored = frame[frame.hostility.notna()].set_index("comment_id").hostility.to_dict()
    assert stored > 150 and len(scores) == stored  # every stored live comment got its score from the Parquet
    assert {k: v for k, v in scores.items() if v is not None} == scored
    assert summary.store and any("truncated at byte" in p for p in summary.store.problems)
    assert run_metrics(engine, settings.alerts).rollup_rows  # the backfilled comments roll up


def incivility_texts(count: int) -> list[str]:
    if not INCIVILITY.exists():
        pytest.skip(f"the incivility set is not at {INCIVILITY}")
    with INCIVILITY.open(encoding="utf-8", newline="") as handle:
        return [text for text, _ in csv.reader(handle)][:count]


def test_a_backfill_equals_civmon_score_input_row_for_row(tmp_path):
    texts = incivility_texts(240)  # many hold line breaks: partitions of a CSV must be cut by rows, not lines
    with (tmp_path / "corpus.csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["text"], *[[t] for t in texts]])
    with (tmp_path / "RC_same.ndjson").open("w", encoding="utf-8") as handle:
        for i, text in enumerate(texts):
            legacy = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # as Pushshift wrote it
            item = {"id": f"c{i}", "link_id": "t3_x", "subreddit": "test", "created_utc": 1.5e9, "body": legacy}
            handle.write(json.dumps(item) + "\n")
    env = {"CIVMON_PSEUDONYM_KEY": TEST_KEY.decode()}

    run = civmon(tmp_path, "backfill", "corpus.csv", "RC_same.ndjson", "--out", "out", "--workers", "2",
                 "--partition-rows", "70", env=env)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "480 rows in 8 partitions" in run.stdout
    one = civmon(tmp_path, "score", "--input", "corpus.csv", "--output", "scores.jsonl", env=env)
    assert one.returncode == 0, one.stderr

    expected = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    frame = output(tmp_path / "out")
    corpus, dump = frame[frame.source_file == "corpus.csv"], frame[frame.source_file == "RC_same.ndjson"]
    assert corpus.source_line.tolist() == [e["row"] for e in expected] == list(range(1, 241))
    assert sum(e["reason"] is None for e in expected) > 200
    for rows in (corpus, dump):
        for want, got in zip(expected, rows.to_dict("records"), strict=True):
            got = {name: None if pd.isna(value) else value for name, value in got.items()}
            for name in ("model_version", "language", "alliance", *[d for d in DIMENSIONS if d in want]):
                assert got[name] == want[name], (want["row"], name)  # int8 scores each text alone: exactly equal
            assert got["skip_reason"] == want["reason"]


def test_a_killed_run_resumes_where_it_stopped_and_refuses_other_parameters(untrained_model, dump_lines, tmp_path):
    (tmp_path / "civmon.toml").write_text(f'[model]\nname = "{untrained_model}"\nruntime = "onnx-int8"\n')
    zst(tmp_path / "RC_recorded.zst", dump_lines)
    args = ["backfill", "RC_recorded.zst", "--out", "out", "--workers", "2", "--partition-rows", "100"]
    env = {"CIVMON_PSEUDONYM_KEY": TEST_KEY.decode()}
    first = start_civmon(tmp_path, *args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=False)
    try:
        written = wait_for_partition(tmp_path / "out", timeout=180)
    finally:
        first.kill()  # SIGKILL: no cleanup of any kind
        first.communicate(timeout=60)
    assert written < 10

    again = civmon(tmp_path, *args, env=env)
    assert again.returncode == 0, again.stderr
    resumed = int(again.stdout.split("partitions (")[1].split(" written before")[0])
    assert resumed >= written
    frame = output(tmp_path / "out")
    assert lines_of(frame, "RC_recorded.zst") == list(range(1, len(dump_lines) + 1))
    assert not list((tmp_path / "out").rglob("*.tmp"))

    other = civmon(tmp_path, *args[:-1], "120", env=env)
    assert other.returncode == 2 and "--partition-rows 120 (it was 100)" in other.stderr
    (tmp_path / "corpus.csv").write_text("text\nhello\n")
    corpus = civmon(tmp_path, "backfill", "corpus.csv", "--out", "elsewhere", "--into-store")
    assert corpus.returncode == 2 and "--into-store takes Reddit dumps only" in corpus.stderr
    assert json.loads((tmp_path / "out" / MANIFEST).read_text())["partition_rows"] == 100


def test_a_corpus_no_row_of_which_has_the_text_field_is_refused_before_scoring(client, settings, tmp_path):
    """A wrong --text-column would otherwise fill the partitions with a bad line for every row."""
    (tmp_path / "corpus.jsonl").write_text('{"body": "the text is here"}\nnot JSON\n{"body": "and here"}\n')
    with pytest.raises(CivmonError, match="no row of .*corpus.jsonl has a field 'text'") as caught:
        backfill(settings, Options([tmp_path / "corpus.jsonl"], tmp_path / "out"), print, client=client)
    assert "--text-column" in caught.value.hint
    assert [p.name for p in (tmp_path / "out").rglob("*")] == [LOCK]  # no manifest, no partition
    options = Options([tmp_path / "corpus.jsonl"], tmp_path / "out", text_column="body")
    assert backfill(settings, options, print, client=client).scored == 2  # the right name: the folder serves


def test_a_corpus_with_reddit_s_ids_beside_its_own_text_field_is_a_corpus(client, settings, tmp_path):
    """Pushshift's `subreddit` and `link_id` without its `body`: read as a dump, every row would be 'empty'."""
    rows = [{"subreddit": "politics", "link_id": "t3_abc", "id": f"c{i}", "comment_text": "You idiot."} for i in (0, 1)]
    (tmp_path / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    options = Options([tmp_path / "mine.jsonl"], tmp_path / "out", text_column="comment_text")
    summary = backfill(settings, options, print, client=client)
    assert (summary.rows, summary.scored, summary.bad) == (2, 2, 0)


@pytest.mark.parametrize(
    ("name", "content", "first"),
    [
        ("corpus.tsv", b"id\ttext\n1\tYou idiot.\n", 1),
        ("corpus.jsonl.zst", zstandard.ZstdCompressor().compress(b'{"text": "You idiot."}\n'), 1),
        ("comments.txt", b"\n\ntext\nYou idiot.\n", 3),  # the blank lines are skipped, and counted
    ],
)
def test_a_file_read_as_a_dump_that_holds_no_reddit_record_is_refused_before_the_cluster(
    settings, tmp_path, name, content, first
):
    (tmp_path / name).write_bytes(content)
    said: list[str] = []
    expected = f"{name} is read as a Reddit dump, but none of its first [0-9]+ lines .* \\(line {first}: "
    with pytest.raises(CivmonError, match=expected):
        backfill(settings, Options([tmp_path / name], tmp_path / "out"), said.append)
    assert said == []  # no cluster started, nothing counted


def test_a_run_whose_every_record_is_a_bad_line_exits_1(untrained_model, tmp_path):
    (tmp_path / "civmon.toml").write_text(f'[model]\nname = "{untrained_model}"\nruntime = "torch"\n')
    (tmp_path / "corpus.csv").write_text("id,text\n1,I agree, you idiot\n2,no, you\n")  # unquoted commas
    result = civmon(
        tmp_path,
        "backfill",
        "corpus.csv",
        "--out",
        "out",
        "--workers",
        "1",
        env={"CIVMON_PSEUDONYM_KEY": TEST_KEY.decode()},
    )
    assert result.returncode == 1, result.stderr
    assert "2 bad lines" in result.stdout and "every record is a bad line" in result.stdout
