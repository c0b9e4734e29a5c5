"""`civmon import` on hostile dumps: every malformed field is a reported bad line (number and field, never its
text), the same on SQLite and PostgreSQL; compressed files that are cut short, corrupt or of another format
say so; links are built from subreddit and ids; names are subreddit names."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import subprocess
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import zstandard
from sqlalchemy import Engine, func, select

from monitor.errors import CivmonError
from monitor.privacy import Pseudonymiser
from monitor.records import CommunityRef, community_name_problem
from monitor.sources.dumps import parse_line
from monitor.sources.reddit_records import comment_record, thread_record, thread_stub
from monitor.store.db import make_engine, transaction
from monitor.store.models import CollectionRun, Comment, Community, Thread
from monitor.store.upsert import Writer, ensure_community

from conftest import TEST_KEY, civmon, refuse_comment_inserts

KEY = TEST_KEY.decode()
T0 = 1_467_590_690
SECRET_BODY = "SECRETBODY words nobody may see"
SECRET_AUTHOR = "secretauthor"


def comment(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"c{n}",
        "link_id": "t3_s1",
        "parent_id": "t3_s1",
        "subreddit": "AskHistorians",
        "author": f"user{n}",
        "body": f"A civil reply, number {n}.",
        "created_utc": T0 + n,
        "score": 3,
        **fields,
    }


def submission(**fields: Any) -> dict[str, Any]:
    return {"id": "s1", "subreddit": "AskHistorians", "author": "op", "title": "Why?", "created_utc": T0, **fields}


def secret(**fields: Any) -> bytes:
    """A comment line whose text must never be shown, with `fields` spoiling it."""
    return json.dumps(comment(999, **{"body": SECRET_BODY, "author": SECRET_AUTHOR, **fields})).encode()


def submission_line(**fields: Any) -> bytes:
    return json.dumps(submission(**{"selftext": SECRET_BODY, "author": SECRET_AUTHOR, **fields})).encode()


DEEP = b'{"id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
# (what is wrong, the line, what its reason must name)
BAD_LINES = [
    ("time NaN", secret(created_utc=float("nan")), "created_utc"),
    ("time Infinity", secret(created_utc=float("inf")), "created_utc"),
    ("time -Infinity", secret(created_utc=float("-inf")), "created_utc"),
    ("time 1e30", secret(created_utc=1e30), "created_utc"),
    ("time 10**30", secret(created_utc=10**30), "created_utc"),
    ("time negative", secret(created_utc=-5), "created_utc"),
    ("time a word", secret(created_utc="yesterday"), "created_utc"),
    ("time null", secret(created_utc=None), "created_utc"),
    ("time a list", secret(created_utc=[1]), "created_utc"),
    ("time 5,000 digits", secret().replace(str(T0 + 999).encode(), b"9" * 5000), "not JSON"),
    ("edited NaN", secret(edited=float("nan")), "edited"),
    ("edited 1e30", secret(edited=1e30), "edited"),
    ("edited a word", secret(edited="often"), "edited"),
    ("score 2**70", secret(score=2**70), "score"),
    ("score -2**70", secret(score=-(2**70)), "score"),
    ("score beyond int32", secret(score=2**31), "score"),
    ("score a word", secret(score="many"), "score"),
    ("score a fraction", secret(score=1.5), "score"),
    ("time true", secret(created_utc=True), "created_utc"),
    ("time false", secret(created_utc=False), "created_utc"),
    ("edited a word that reads as true", secret(edited="yes"), "edited"),
    ("edited the string true", secret(edited="true"), "edited"),
    ("edited the string on", secret(edited="on"), "edited"),
    ("score true", secret(score=True), "score"),
    ("score false", secret(score=False), "score"),
    ("num_comments true", submission_line(num_comments=True), "num_comments"),
    ("submission time true", submission_line(created_utc=True), "created_utc"),
    ("num_comments 2**40", submission_line(num_comments=2**40), "num_comments"),
    ("surrogate in author", secret(author="bad\ud800name"), "author"),
    ("surrogate in body", secret(body="SECRETBODY \ud800"), "body"),
    ("surrogate in title", submission_line(title="SECRETBODY \udfff"), "title"),
    ("surrogate in selftext", submission_line(selftext="SECRETBODY \ud800"), "selftext"),
    ("surrogate in subreddit", secret(subreddit="Ask\ud800"), "subreddit"),
    ("surrogate in id", secret(id="c\udc00"), "id"),
    ("surrogate in link_id", secret(link_id="t3_\ud800"), "link_id"),
    ("id of 33 characters", secret(id="a" * 33), "id"),
    ("link_id of 33 characters", secret(link_id="t3_" + "a" * 33), "link_id"),
    ("parent_id of 33 characters", secret(parent_id="t1_" + "a" * 33), "parent_id"),
    ("id not base 36", secret(id="C9/x"), "id"),
    ("id a number", secret(id=12345), "id"),
    ("subreddit of 129 characters", secret(subreddit="a" * 129), "subreddit"),
    ("subreddit of 500 characters", secret(subreddit="b" * 500), "subreddit"),
    ("subreddit of 22 characters", secret(subreddit="c" * 22), "subreddit"),
    ("subreddit markup", secret(subreddit="[/oops]"), "subreddit"),
    ("subreddit empty", secret(subreddit=""), "subreddit"),
    ("subreddit quotes", secret(subreddit="we'ird; sub\"name"), "subreddit"),
    ("subreddit with r/", secret(subreddit="r/politics"), "subreddit"),
    ("author of 65 characters", secret(author="d" * 65), "author"),
    ("author markup", secret(author="[bold]x[/bold]"), "author"),
    ("id null", secret(id=None), "id"),
    ("subreddit null", secret(subreddit=None), "subreddit"),
    ("link_id null", secret(link_id=None), "link_id"),
    ("title null", submission_line(title=None), "title"),
    ("subreddit missing", json.dumps({"id": "x1", "link_id": "t3_s1", "created_utc": T0}).encode(), "subreddit"),
    ("a JSON array", b'[1, 2, "SECRETBODY"]', "not an object"),
    ("a JSON string", b'"SECRETBODY"', "not an object"),
    ("a JSON number", b"42", "not an object"),
    ("JSON null", b"null", "not an object"),
    ("nested 100,000 deep", DEEP, "not JSON"),
    ("not UTF-8", secret().replace(b"SECRETBODY", b"SECRETBODY\xff\xfe"), "not UTF-8"),
    ("cut short", secret()[:60], "not JSON"),
]


@pytest.mark.parametrize(("line", "field"), [case[1:] for case in BAD_LINES], ids=[case[0] for case in BAD_LINES])
def test_every_bad_field_is_named_and_never_quoted(line: bytes, field: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_line(line)
    reason = str(caught.value)
    assert field in reason
    for text in ("SECRETBODY", SECRET_AUTHOR, "oops", "we'ird", "bbbbb", "ccccc", "ddddd", "bold"):
        assert text not in reason


@pytest.mark.parametrize(
    ("fields", "read"),
    [
        ({"created_utc": str(T0)}, {"created_utc": T0}),
        ({"created_utc": f"{T0}.0"}, {"created_utc": T0}),
        ({"edited": str(T0 + 60)}, {"edited_utc": T0 + 60}),
        ({"edited": True}, {"edited_utc": T0 + 1}),  # Reddit before 2012: edited, time unknown
        ({"edited": False}, {"edited_utc": None}),
        ({"score": "12"}, {"platform_score": 12}),
        ({"score": "-3"}, {"platform_score": -3}),
    ],
)
def test_numbers_written_as_strings_are_read(fields: dict[str, Any], read: dict[str, Any]) -> None:
    """Pushshift wrote some numbers as strings; those are numbers, unlike true or "yes"."""
    record = comment_record(parse_line(json.dumps(comment(1, **fields)).encode()).model_dump())
    assert {name: getattr(record, name) for name in read} == read


def import_dump(cwd: Path, db_url: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    env = {"CIVMON_DATABASE__URL": db_url, "CIVMON_PSEUDONYM_KEY": KEY}
    return civmon(cwd, "import", *map(str, paths), env=env)


def stored(db_url: str) -> dict[str, Any]:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        found = {
            "communities": set(connection.scalars(select(Community.name))),
            "comments": {tuple(r) for r in connection.execute(select(Comment.platform_id, Comment.body))},
            "threads": connection.scalar(select(func.count()).select_from(Thread)),
            "errors": list(connection.scalars(select(CollectionRun.error).where(CollectionRun.error.is_not(None)))),
        }
    engine.dispose()
    return found


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


# Ten to a file: the summary lists the first ten bad lines of each file.
GROUPS = [BAD_LINES[i : i + 10] for i in range(0, len(BAD_LINES), 10)]


@pytest.mark.parametrize("group", GROUPS, ids=[f"{g[0][0]}..." for g in GROUPS])
def test_bad_lines_are_reported_and_the_rest_imported(tmp_path: Path, engine: Engine, db_url: str, group) -> None:
    """Good and bad lines alternate: each bad one is reported with its number and field, every good one is
    stored, nothing of a bad line's text shows anywhere, and the rerun changes nothing."""
    lines, expected, good = [json.dumps(submission()).encode()], {}, set()
    for n, (_, line, field) in enumerate(group):
        lines += [line, json.dumps(comment(n)).encode()]
        expected[len(lines) - 1] = field
        good.add((f"c{n}", f"A civil reply, number {n}."))
    dump = write_lines(tmp_path / "RC_hostile.ndjson", lines)

    first = import_dump(tmp_path, db_url, dump)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert f"{len(group)} bad lines" in first.stdout
    report = {line.strip().split(":")[0]: line for line in first.stdout.splitlines() if line.startswith("  line ")}
    for number, field in expected.items():
        assert field in report[f"line {number}"], first.stdout
    after = stored(db_url)
    assert after["comments"] == good
    assert after["communities"] == {"AskHistorians"}
    again = import_dump(tmp_path, db_url, dump)
    assert again.returncode == 0, again.stderr
    assert {k: v for k, v in stored(db_url).items() if k != "errors"} == {
        k: v for k, v in after.items() if k != "errors"
    }

    pseudonym = Pseudonymiser(KEY.encode()).author("reddit", SECRET_AUTHOR)
    shown = first.stdout + first.stderr + again.stdout + again.stderr + "\n".join(stored(db_url)["errors"])
    for text in ("SECRETBODY", SECRET_AUTHOR, pseudonym, "oops", "we'ird", "bbbbb", "ccccc", "ddddd", "bold"):
        assert text not in shown


def test_a_failed_statement_is_logged_without_its_parameters(engine: Engine) -> None:
    """A database error's text (SQLAlchemy's quotes the statement and every parameter) stays out of the run log."""
    from monitor.store.runs import recorded_run

    with pytest.raises(Exception, match="SECRETBODY"), recorded_run(engine, "import x", None), transaction(engine) as s:
        s.execute(Comment.__table__.insert(), {"body": SECRET_BODY, "author": SECRET_AUTHOR})  # NOT NULLs missing
    with engine.connect() as connection:
        error = connection.scalar(select(CollectionRun.error))
    assert "IntegrityError" in error or "NotNullViolation" in error
    assert "SECRETBODY" not in error and SECRET_AUTHOR not in error and "INSERT" not in error


def test_a_database_that_refuses_a_batch_is_a_message(tmp_path: Path, engine: Engine, db_url: str) -> None:
    refuse_comment_inserts(engine)
    dump = write_lines(tmp_path / "RC.ndjson", [json.dumps(submission()).encode(), secret()])
    result = import_dump(tmp_path, db_url, dump)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "the database refused a batch" in result.stderr and "refused" in result.stderr
    shown = result.stdout + result.stderr + "\n".join(stored(db_url)["errors"])
    assert "SECRETBODY" not in shown and SECRET_AUTHOR not in shown and "INSERT" not in shown


# -- compressed files -------------------------------------------------------------------------------------------


def dump_bytes(count: int) -> bytes:
    return b"".join(json.dumps(comment(n, body=f"Reply {n}: " + "words " * 40)).encode() + b"\n" for n in range(count))


def test_truncated_zst_says_where_and_keeps_what_came_before(tmp_path: Path, engine: Engine, db_url: str) -> None:
    whole = zstandard.ZstdCompressor(level=3).compress(json.dumps(submission()).encode() + b"\n" + dump_bytes(5000))
    cut = len(whole) * 3 // 5
    dump = tmp_path / "RC_cut.ndjson.zst"
    dump.write_bytes(whole[:cut])

    result = import_dump(tmp_path, db_url, dump)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert f"truncated at byte {cut:,}" in message
    kept = len(stored(db_url)["comments"])
    assert 0 < kept < 5000
    assert f"({kept:,} comments" in message
    assert any(f"truncated at byte {cut:,}" in e for e in stored(db_url)["errors"])


def test_zst_of_several_frames_is_read_whole(tmp_path: Path, engine: Engine, db_url: str) -> None:
    packer = zstandard.ZstdCompressor(level=3)
    data = json.dumps(submission()).encode() + b"\n" + dump_bytes(3000)
    half = data.index(b"\n", len(data) // 2) + 1
    dump = tmp_path / "RC_frames.zst"
    dump.write_bytes(packer.compress(data[:half]) + packer.compress(data[half:]))
    result = import_dump(tmp_path, db_url, dump)
    assert result.returncode == 0, result.stderr
    assert len(stored(db_url)["comments"]) == 3000


@pytest.mark.parametrize(
    ("name", "pack", "says"),
    [
        ("RC.ndjson.gz", gzip.compress, "gzip is not supported"),
        ("RC.ndjson", gzip.compress, "gzip is not supported"),  # the bytes tell, not the name
        ("RC.ndjson.bz2", bz2.compress, "bzip2 is not supported"),
        ("RC.ndjson.xz", lzma.compress, "xz is not supported"),
        ("RC.zip", None, "zip is not supported"),
        ("RC.ndjson.zst", lambda data: bytes(range(256)) * 40, "not a zstd file"),
        ("RC_empty.zst", lambda data: b"", "not a zstd file"),
        ("RC.ndjson.zst", lambda data: b"\x28\xb5\x2f\xfd" + bytes(range(256)) * 40, "corrupt"),
    ],
    ids=["gz", "gz-named-ndjson", "bz2", "xz", "zip", "garbage-zst", "empty-zst", "garbage-after-magic"],
)
def test_other_formats_and_garbage_are_named(tmp_path: Path, engine: Engine, db_url: str, name, pack, says) -> None:
    good = write_lines(tmp_path / "RC_good.ndjson", [json.dumps(item).encode() for item in (submission(), comment(1))])
    dump = tmp_path / name
    if pack is None:
        with zipfile.ZipFile(dump, "w") as archive:
            archive.writestr("RC.ndjson", dump_bytes(10))
    else:
        dump.write_bytes(pack(dump_bytes(10)))
    result = import_dump(tmp_path, db_url, good, dump)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert says in " ".join(result.stderr.split())
    if says != "corrupt":  # found before anything is imported
        assert stored(db_url)["comments"] == set()


def test_zstd_is_recognised_by_its_bytes(tmp_path: Path, engine: Engine, db_url: str) -> None:
    dump = tmp_path / "RC_2016-07.ndjson"
    dump.write_bytes(zstandard.ZstdCompressor().compress(json.dumps(submission()).encode() + b"\n" + dump_bytes(20)))
    result = import_dump(tmp_path, db_url, dump)
    assert result.returncode == 0, result.stderr
    assert len(stored(db_url)["comments"]) == 20


# -- links ------------------------------------------------------------------------------------------------------

EVIL_LINKS = [
    "@evil.example/phish",
    "//evil.example/phish",
    "http://evil.example/phish",
    "https://evil.example/r/x/comments/s1/",
    "https://www.reddit.com.evil.example/r/x/",
    "https://www.reddit.com@evil.example/r/x/",
    "javascript:alert(document.cookie)",
    "\\\\evil.example\\phish",
    "/\\evil.example/phish",
    " https://evil.example/",
    "\t//evil.example/",
    "/r/x/\r\n@evil.example",
    "data:text/html,<script>alert(1)</script>",
]


def on_reddit(path: str) -> bool:
    return urlsplit(urljoin("https://www.reddit.com", path)).hostname == "www.reddit.com"


def test_dump_links_are_built_from_ids(tmp_path: Path, engine: Engine, db_url: str) -> None:
    """Each hostile permalink on a submission, its comment, and a comment whose thread is known only as a stub."""
    lines = []
    for n, evil in enumerate(EVIL_LINKS):
        lines += [
            json.dumps(submission(id=f"s{n}", permalink=evil, url="https://example.org/article")).encode(),
            json.dumps(comment(n, link_id=f"t3_s{n}", permalink=evil, link_permalink=evil)).encode(),
            json.dumps(comment(n + 100, link_id=f"t3_x{n}", permalink=evil, link_permalink=evil)).encode(),
        ]
    result = import_dump(tmp_path, db_url, write_lines(tmp_path / "RC_links.ndjson", lines))
    assert result.returncode == 0, result.stderr
    with engine.connect() as connection:
        links = {r.platform_id: r.permalink for r in connection.execute(select(Comment.platform_id, Comment.permalink))}
        threads = {r.platform_id: r.permalink for r in connection.execute(select(Thread.platform_id, Thread.permalink))}
    for n in range(len(EVIL_LINKS)):
        assert links[f"c{n}"] == f"/r/AskHistorians/comments/s{n}/_/c{n}/"
        assert links[f"c{n + 100}"] == f"/r/AskHistorians/comments/x{n}/_/c{n + 100}/"
        assert threads[f"s{n}"] == f"/r/AskHistorians/comments/s{n}/"
        assert threads[f"x{n}"] == f"/r/AskHistorians/comments/x{n}/"
    assert len(links) == len(threads) == 2 * len(EVIL_LINKS)
    assert all(on_reddit(link) for link in [*links.values(), *threads.values()])


@pytest.mark.parametrize("evil", EVIL_LINKS)
def test_collected_reddit_links_are_built_from_ids(evil: str) -> None:
    """The API's JSON (through praw) goes through the same mapping: its permalinks are not used either."""
    data = {**comment(1), "id": "c1", "permalink": evil, "link_permalink": evil}
    assert comment_record(data).permalink == "/r/AskHistorians/comments/s1/_/c1/"
    assert thread_stub(data).permalink == "/r/AskHistorians/comments/s1/"
    assert thread_record({**submission(), "permalink": evil}).permalink == "/r/AskHistorians/comments/s1/"


@pytest.mark.parametrize("part", ["@evil.example", "../../..//evil.example", "x/../../@evil.example", "a?b#c"])
def test_an_unchecked_part_cannot_leave_reddit(part: str) -> None:
    record = comment_record({**comment(1), "subreddit": part, "id": part, "link_id": f"t3_{part}"})
    assert on_reddit(record.permalink)
    assert record.permalink.count("/") == 7  # /r/NAME/comments/THREAD/_/ID/: no part added a segment


# -- names ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["AskHistorians", "ab_", "de", "reddit.com", "u_some-user", "t:politics2008", "a" * 21, "The_Donald"]
)
def test_reddit_names_reddit_allows(name: str) -> None:
    assert community_name_problem("reddit", name) is None


@pytest.mark.parametrize(
    "name",
    ["[/oops]", "", "x" * 500, "a" * 22, 'we\'ird; sub"name', "r/politics", "_hidden", "a", "Ask Historians",
     "reddit.com.evil", "Ask\u00e9", "ask\n", "u_", "t:"],
)  # fmt: skip
def test_other_names_are_refused(name: str) -> None:
    problem = community_name_problem("reddit", name)
    assert problem
    assert len(name) < 4 or name not in problem  # the name may come from a dump: never echoed


def test_the_store_refuses_a_name_its_platform_does_not_allow(engine: Engine, privacy, pseudonymiser) -> None:
    for ref in (CommunityRef("reddit", "[/oops]"), CommunityRef("reddit", ""), CommunityRef("hackernews", "frontpage")):
        with pytest.raises(CivmonError, match="community name was refused"), transaction(engine) as session:
            Writer(session, privacy, pseudonymiser).write(ref, [], [])
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Community)) == 0


@pytest.mark.parametrize("configured", [None, "AskHistorians", "askHISTORIANS"])
def test_a_community_is_one_whatever_the_case_of_its_name(tmp_path: Path, engine: Engine, db_url: str, configured):
    """Reddit's names are case-insensitive: a configured `AskHistorians` and a dump's `askhistorians` or
    `ASKHISTORIANS` are one community, under the spelling stored first, and its thread is stored once."""
    if configured:
        ensure_community(engine, CommunityRef("reddit", configured))
    lines = [
        json.dumps(comment(n, subreddit=name)).encode()
        for n, name in enumerate(["askhistorians", "ASKHISTORIANS", "AskHistorians"])
    ]
    lines.append(json.dumps(submission(subreddit="AskHISTORIANS")).encode())
    result = import_dump(tmp_path, db_url, write_lines(tmp_path / "mixed.ndjson", lines))
    assert result.returncode == 0, result.stderr
    found = stored(db_url)
    assert found["communities"] == {configured or "askhistorians"}
    assert (found["threads"], len(found["comments"])) == (1, 3)
    assert ensure_community(engine, CommunityRef("reddit", "ASKhistorians")) == ensure_community(
        engine, CommunityRef("reddit", "askhistorians")
    )
