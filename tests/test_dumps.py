"""`civmon import`: real Reddit comments (from the recorded API traffic) as NDJSON dumps, plain and .zst."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import zstandard
from sqlalchemy import func, select

from monitor.scoring.text import prepare
from monitor.sources.dumps import parse_line
from monitor.store.db import make_engine
from monitor.store.models import CollectionRun, Comment, Community, RunStatus, Thread

from conftest import TEST_KEY, civmon, start_civmon, wait_for
from recordings import PRAW_CASSETTES, recorded

pytestmark = pytest.mark.skipif(
    not PRAW_CASSETTES.is_dir(), reason=f"recorded Reddit traffic not found at {PRAW_CASSETTES}"
)


@pytest.fixture(scope="module")
def dump_items() -> list[dict[str, Any]]:
    # Placeholder subreddits (<TEST_SUBREDDIT>) were redacted by the recorders: leave them out.
    real = [i for kind in ("t3", "t1") for i in recorded(kind).values() if "<" not in i.get("subreddit", "<")]
    assert sum("link_id" in i for i in real) > 1000 and sum("title" in i for i in real) > 50
    return real


def import_dump(cwd: Path, db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return civmon(cwd, "import", *args, env={"CIVMON_DATABASE__URL": db_url, "CIVMON_PSEUDONYM_KEY": TEST_KEY.decode()})


def stored(db_url: str) -> tuple[int, int, set[tuple[str, str]]]:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        threads = connection.scalar(select(func.count()).select_from(Thread))
        comments = connection.scalar(select(func.count()).select_from(Comment))
        keys = {tuple(r) for r in connection.execute(select(Community.name, Comment.platform_id).join(Community))}
    engine.dispose()
    return threads, comments, keys


def test_import_plain_and_zst_is_idempotent(tmp_path, engine, db_url, dump_items):
    plain = tmp_path / "RC_sample.ndjson"
    plain.write_text("\n".join(json.dumps(item) for item in dump_items) + "\n")
    packed = tmp_path / "RC_sample.ndjson.zst"
    packed.write_bytes(zstandard.ZstdCompressor(level=10, write_content_size=False).compress(plain.read_bytes()))

    first = import_dump(tmp_path, db_url, str(plain))
    assert first.returncode == 0, first.stderr
    comments = [i for i in dump_items if "link_id" in i]
    threads, stored_comments, keys = stored(db_url)
    assert stored_comments == len(comments)
    assert keys == {(c["subreddit"], c["id"]) for c in comments}
    assert threads >= len(dump_items) - len(comments)
    assert f"{len(comments):,} comments" in first.stdout and "0 bad lines" in first.stdout

    again = import_dump(tmp_path, db_url, str(packed))
    assert again.returncode == 0, again.stderr
    assert stored(db_url) == (threads, stored_comments, keys)


def test_bad_lines_are_reported_and_skipped(tmp_path, engine, db_url, dump_items):
    good = [json.dumps(i).encode() for i in dump_items if "link_id" in i][:5]
    comment = dict(next(i for i in dump_items if "link_id" in i), id="zzbadtype", created_utc="not a time")
    lines = [
        good[0],
        good[1][: len(good[1]) // 2],  # truncated
        json.dumps(comment).encode(),  # wrong type
        good[2].replace(b'"body": "', b'"body": "\xff\xfe'),  # not UTF-8
        b"[1, 2, 3]",
        b'{"kind": "t5", "id": "x"}',
        b"",
        good[3],
        good[4],
    ]
    dump = tmp_path / "mixed.ndjson"
    dump.write_bytes(b"\n".join(lines) + b"\n")
    result = import_dump(tmp_path, db_url, str(dump))
    assert result.returncode == 0, result.stderr
    assert "5 bad lines" in result.stdout
    for number, reason in [
        (2, "not JSON"),
        (3, "created_utc"),
        (4, "not UTF-8"),
        (5, "not an object"),
        (6, "neither a comment"),
    ]:
        assert f"line {number}: " in result.stdout and reason in result.stdout
    assert stored(db_url)[1] == 3


def test_parse_line_reasons():
    with pytest.raises(ValueError, match="wrong fields: created_utc"):
        parse_line(b'{"id": "a", "link_id": "t3_b", "subreddit": "AskHistorians", "created_utc": [1]}')
    item = parse_line(b'{"id": "a", "link_id": "t3_b", "subreddit": "AskHistorians", "created_utc": "1467590690"}')
    assert item.created_utc == 1467590690


def test_legacy_escaped_text_is_unescaped_so_quotes_stay_quotes():
    fields = {"id": "a", "link_id": "t3_b", "subreddit": "AskHistorians", "created_utc": 1}
    item = parse_line(json.dumps({**fields, "body": "&gt; idiot\n\nNo &amp; no"}).encode())
    assert item.body == "> idiot\n\nNo & no"
    assert prepare(item.body).chunks == ("No & no",)  # the quoted parent does not count against the reply
    thread = {"id": "b", "subreddit": "AskHistorians", "created_utc": 1, "title": "Q&amp;A", "selftext": "&lt;3"}
    submission = parse_line(json.dumps(thread).encode())
    assert (submission.title, submission.selftext) == ("Q&A", "<3")
    link = "https://x.org/?a=1&copy=2&not=3"  # raw text: only the three legacy escapes are undone
    assert parse_line(json.dumps({**fields, "body": link}).encode()).body == link


def test_missing_file_is_a_clear_error(tmp_path, engine, db_url):
    result = import_dump(tmp_path, db_url, str(tmp_path / "nope.zst"))
    assert result.returncode == 2 and "is not a file" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_an_import_stopped_by_a_signal_says_so_in_the_run_log_and_a_rerun_finishes_it(tmp_path, engine, db_url, stop):
    """systemd, Slurm or `timeout` stop an import with SIGTERM: its run must not read 'running' for ever."""
    template = {"link_id": "t3_big", "subreddit": "bigdump", "created_utc": 1_700_000_000, "body": "A kind word."}
    lines = (json.dumps(template | {"id": f"c{n}", "author": f"user{n % 50}"}) for n in range(150_000))
    (tmp_path / "RC_big.ndjson").write_text("\n".join(lines) + "\n")
    env = {"CIVMON_DATABASE__URL": db_url, "CIVMON_PSEUDONYM_KEY": TEST_KEY.decode()}
    running = start_civmon(tmp_path, "import", "RC_big.ndjson", env=env)
    wait_for(lambda: stored(db_url)[1] > 0 or running.poll() is not None)
    running.send_signal(stop)
    output, _ = running.communicate(timeout=120)
    assert running.returncode == 128 + stop, output
    with engine.connect() as connection:
        status, error = connection.execute(select(CollectionRun.status, CollectionRun.error)).one()
    assert (status, error) == (RunStatus.FAILED, "stopped mid-run (Ctrl-C or a signal): what it finished is "
                                                 "stored, and a rerun does the rest")  # fmt: skip
    assert 0 < stored(db_url)[1] < 150_000
    assert import_dump(tmp_path, db_url, "RC_big.ndjson").returncode == 0
    assert stored(db_url)[1] == 150_000
