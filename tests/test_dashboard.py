"""The dashboard, page by page, through streamlit.testing.v1.AppTest: no exception on an empty, a partial or a
seeded store, and the numbers on each page equal those computed here straight from the comments and scores
tables (not from the rollups the pages read)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import streamlit
from markdown_it import MarkdownIt
from markdown_it.token import Token
from sqlalchemy import Engine, and_, case, func, select, update
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import element_tree as et

from monitor.metrics import dynamics
from monitor.metrics.rollups import rebuild
from monitor.records import CommunityRef
from monitor.store import schema
from monitor.store.db import make_engine, scratch_postgres_database, transaction
from monitor.store.models import Alert, CollectionRun, Comment, Community, RunStatus, Score, Thread
from monitor.store.upsert import ensure_community

import dashboard_seed
from conftest import POSTGRES_URL
from dashboard_seed import DAY, LAST_DAY, SPIKE
from seed import MODEL, MONDAY, Seed, seed

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
PAGES = ["overview", "community", "compare", "thread", "alerts", "health"]
THRESHOLD = 0.5  # seed.py's model threshold


def write_config(folder: Path, url: str) -> None:
    lines = [f'[database]\nurl = "{url}"\n']
    for ref, tz in dashboard_seed.TIMEZONES.items():
        lines.append(f'[[communities]]\nplatform = "{ref.platform}"\nname = "{ref.name}"\ntimezone = "{tz}"\n')
    (folder / "civmon.toml").write_text("\n".join(lines))


def open_app(
    monkeypatch: pytest.MonkeyPatch,
    folder: Path,
    url: str,
    page: str = "overview",
    query: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> AppTest:
    """The app as `streamlit run` starts it in `folder` (its working folder), pointed at `url` by environment."""
    monkeypatch.chdir(folder)
    monkeypatch.setenv("CIVMON_DATABASE__URL", url)
    monkeypatch.delenv("CIVMON_CONFIG", raising=False)
    monkeypatch.delenv("CIVMON_EVAL_DIR", raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    streamlit.cache_data.clear()
    streamlit.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query or {})
    at.run()
    if page != "overview":
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    [found] = [m.value for m in at.metric if m.label == label]
    return found


# GitHub-flavoured enough for the checks: raw HTML and bare URLs are recognised, as Streamlit's remark-gfm does
# (http(s)://, www. and e-mail addresses; not bare domains such as eval.md).
MARKDOWN = MarkdownIt("commonmark", {"html": True, "linkify": True}).enable(["linkify", "table", "strikethrough"])
MARKDOWN.linkify.set({"fuzzy_link": False})
WORD_JOINER = "\u2060"


def inline_tokens(source: str) -> Iterator[Token]:
    for block in MARKDOWN.parse(source):
        yield block
        yield from block.children or []


def displayed(source: str) -> str:
    """The text a reader sees of a Markdown source: markup and escapes gone, invisible word joiners too."""
    parts = []
    for token in inline_tokens(source):
        if token.type in ("text", "code_inline"):
            parts.append(token.content)
        elif token.type in ("softbreak", "hardbreak", "paragraph_close", "heading_close"):
            parts.append(" ")
    return " ".join("".join(parts).replace(WORD_JOINER, "").split())


def messages(at: AppTest) -> str:
    return " ".join(
        displayed(str(e.value)) for e in [*at.error, *at.info, *at.warning, *at.success, *at.markdown, *at.caption]
    )


# --- seeded stores ----------------------------------------------------------------------------------------------


def build(url: str, folder: Path) -> dashboard_seed.Seeded:
    engine = make_engine(url)
    schema.upgrade(engine)
    seeded = dashboard_seed.build(engine)
    engine.dispose()
    write_config(folder, url)
    return seeded


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Engine]:
    folder = tmp_path_factory.mktemp("seeded")
    url = f"sqlite:///{folder / 'civmon.db'}"
    build(url, folder)
    engine = make_engine(url)
    yield url, folder, engine
    engine.dispose()


def community_id(engine: Engine, key: str) -> int:
    platform, name = key.split("/")
    with engine.connect() as c:
        return c.scalar(select(Community.id).where(Community.platform == platform, Community.name == name))


def by_hand(engine: Engine, cid: int, since: int, until: int) -> dict[str, float]:
    """Comments, scored, hostile share, mean hostility and alliance of a period, from the raw tables."""
    query = (
        select(
            func.count(Comment.id),
            func.count(Score.hostility),
            func.sum(case((Score.hostility >= THRESHOLD, 1), else_=0)),
            func.avg(Score.hostility),
            func.avg(Score.alliance),
        )
        .select_from(Comment)
        .outerjoin(Score, and_(Score.comment_id == Comment.id, Score.model_version == MODEL))
        .where(Comment.community_id == cid, Comment.created_utc >= since, Comment.created_utc < until)
    )
    with engine.connect() as c:
        n, scored, hostile, hostility, alliance = c.execute(query).one()
    return {
        "comments": n,
        "scored": scored,
        "share": (hostile or 0) / scored,
        "hostility": hostility,
        "alliance": alliance,
    }


def open_alerts(engine: Engine) -> dict[int, int]:
    with engine.connect() as c:
        return dict(
            c.execute(
                select(Alert.community_id, func.count())
                .where(Alert.acknowledged_utc.is_(None))
                .group_by(Alert.community_id)
            ).all()
        )


def test_overview_numbers_match_the_database(seeded, monkeypatch):
    url, folder, engine = seeded
    at = open_app(monkeypatch, folder, url)
    until = LAST_DAY + DAY
    since, baseline_since = until - 7 * DAY, until - 35 * DAY
    table = at.dataframe[0].value.set_index("community")
    alerts = open_alerts(engine)
    assert sorted(table.index) == sorted(r.key for r in dashboard_seed.TIMEZONES)
    for key, row in table.iterrows():
        cid = community_id(engine, key)
        now, base = by_hand(engine, cid, since, until), by_hand(engine, cid, baseline_since, since)
        assert row["comments"] == now["comments"]
        assert row["hostile_share"] == pytest.approx(100 * now["share"])
        assert row["alliance"] == pytest.approx(now["alliance"])
        assert row["alliance_baseline"] == pytest.approx(base["alliance"])
        assert row["hostile_share_change"] == pytest.approx(100 * (now["share"] - base["share"]))
        assert row["open_alerts"] == alerts.get(cid, 0)
        assert len(row["trend"]) > 0 and all(isinstance(v, float) for v in row["trend"])  # the sparkline draws
    assert metric(at, "Comments in period") == f"{int(table['comments'].sum()):,}"
    assert metric(at, "Open alerts") == str(sum(alerts.values())) != "0"


def test_overview_row_opens_the_community_page(seeded, monkeypatch):
    url, folder, _ = seeded
    at = open_app(monkeypatch, folder, url)
    rows = list(at.dataframe[0].value["community"])
    at.session_state["overview-table"] = {"selection": {"rows": [rows.index(SPIKE.key)], "columns": []}}
    at.run()
    assert not at.exception
    assert at.query_params.get("community") == SPIKE.key
    assert any(displayed(t.value) == "r/seeded" for t in at.title)


def test_community_page_numbers_match_the_database(seeded, monkeypatch):
    url, folder, engine = seeded
    at = open_app(monkeypatch, folder, url, "community", {"community": SPIKE.key})
    until = LAST_DAY + DAY
    since = until - 28 * DAY  # the default period: the last 28 days
    cid = community_id(engine, SPIKE.key)
    hand = by_hand(engine, cid, since, until)
    assert metric(at, "Comments in period") == f"{hand['comments']:,}"
    assert metric(at, "Scored comments") == f"{hand['scored']:,}"
    assert metric(at, "Hostile share") == f"{hand['share']:.1%}"
    assert metric(at, "Mean hostility") == f"{hand['hostility']:.2f}"
    assert metric(at, "Alliance index") == f"{hand['alliance']:+.2f}"
    assert not at.dataframe  # the first view (trends) reads rollups only; the other views compute when opened
    with transaction(engine) as session:
        derailed = dynamics.derailed(session, dynamics.Scope(cid, MODEL, since, until))
    assert [d.thread for d in derailed] == [dashboard_seed.DERAIL_THREAD]
    at = open_app(monkeypatch, folder, url, "community", {"community": SPIKE.key, "view": "Escalation"})
    [derail_table] = [d.value for d in at.dataframe if "opening" in d.value.columns]
    assert derail_table["later"].tolist() == pytest.approx([100 * derailed[0].later_share])
    # The most hostile comments: the period's highest scores, linked to reddit.com, with their text.
    at = open_app(monkeypatch, folder, url, "community", {"community": SPIKE.key, "view": "Threads and comments"})
    [worst] = [d.value for d in at.dataframe if "text" in d.value.columns]
    with engine.connect() as c:
        top = (
            c.execute(
                select(Score.hostility)
                .join(Comment, Comment.id == Score.comment_id)
                .where(Comment.community_id == cid, Comment.created_utc >= since, Comment.created_utc < until)
                .order_by(Score.hostility.desc())
                .limit(len(worst))
            )
            .scalars()
            .all()
        )
    assert worst["hostility"].tolist() == pytest.approx(top)
    assert all(link.startswith("https://www.reddit.com/r/seeded/comments/") for link in worst["link"])
    assert worst["text"].notna().all()
    with engine.connect() as c:  # each comment's reply tree: the thread it was posted in (named in its link)
        threads = dict(c.execute(select(Thread.platform_id, Thread.id).where(Thread.community_id == cid)).all())
    posted_in = [threads[link.split("/comments/")[1].split("/")[0]] for link in worst["link"]]
    assert worst["tree"].tolist() == [f"thread?thread={t}" for t in posted_in]


def test_community_page_hourly_and_in_other_time_zone(seeded, monkeypatch):
    url, folder, engine = seeded
    at = open_app(monkeypatch, folder, url, "community", {"community": "reddit/AskCalm"})
    at.selectbox(key="period").set_value("Last 7 days")
    at.button_group(key="bucket").set_value("hour").run()
    assert not at.exception
    # About one comment an hour: no hour has the 10 scored comments a number needs.
    assert "Not enough data: no hour in this period has 10 scored comments" in messages(at)
    assert not at.get("vega_lite_chart")


def test_compare_page_csv_is_what_is_shown(seeded, monkeypatch):
    url, folder, engine = seeded
    downloads: list[bytes] = []
    original = streamlit.download_button

    def record(label, data, *args, **kwargs):  # type: ignore[no-untyped-def]
        downloads.append(data)
        return original(label, data, *args, **kwargs)

    monkeypatch.setattr(streamlit, "download_button", record)
    at = open_app(monkeypatch, folder, url, "compare")
    assert not at.exception
    shown = at.dataframe[0].value
    csv = pd.read_csv(io.BytesIO(downloads[-1]))
    assert len(csv) == len(shown) and csv["value"].tolist() == pytest.approx(shown["value"].tolist())
    assert set(csv["community"]) == {r.key for r in dashboard_seed.TIMEZONES}
    # Mean hostility per UTC day, straight from the scores, for the days with enough scored comments.
    cid = community_id(engine, SPIKE.key)
    day = Comment.created_utc - Comment.created_utc % DAY
    with engine.connect() as c:
        rows = c.execute(
            select(day, func.avg(Score.hostility), func.count())
            .join(Score, Score.comment_id == Comment.id)
            .where(Comment.community_id == cid, Comment.created_utc >= LAST_DAY - 27 * DAY)
            .group_by(day)
            .order_by(day)
        ).all()
    expected = {d: m for d, m, n in rows if n >= 10}
    mine = csv[csv["community"] == SPIKE.key].set_index("start_utc")["value"].to_dict()
    assert mine == pytest.approx(expected)


def test_thread_page_marks_the_turn(seeded, monkeypatch):
    url, folder, engine = seeded
    with engine.connect() as c:
        thread_id = c.scalar(select(Thread.id).where(Thread.platform_id == dashboard_seed.DERAIL_THREAD))
        n = c.scalar(select(func.count()).select_from(Comment).where(Comment.thread_id == thread_id))
    at = open_app(monkeypatch, folder, url, "thread", {"thread": str(thread_id)})
    cid = community_id(engine, SPIKE.key)
    with transaction(engine) as session:
        [derailed] = dynamics.derailed(session, dynamics.Scope(cid, MODEL, LAST_DAY - 27 * DAY, LAST_DAY + DAY))
    assert metric(at, "Comments") == str(n) and metric(at, "Derailed") == "yes"
    assert derailed.turn_comment == dashboard_seed.DERAIL_TURN
    assert f"at comment {derailed.turn_comment} " in messages(at)
    tree = at.dataframe[0].value
    [flagged] = [t for t in tree["comment"] if "⚑" in t]
    assert len(tree) == n and "idiot" in flagged  # the turning comment's own text


def test_thread_page_picker(seeded, monkeypatch):
    url, folder, _ = seeded
    at = open_app(monkeypatch, folder, url, "thread", {"community": SPIKE.key})
    assert at.selectbox(key="thread-pick").value is not None
    assert metric(at, "Comments")


def test_alerts_page_and_acknowledge(tmp_path, monkeypatch):
    folder = tmp_path
    url = f"sqlite:///{folder / 'civmon.db'}"
    build(url, folder)  # a store of its own: acknowledging changes it
    engine = make_engine(url)
    at = open_app(monkeypatch, folder, url, "alerts")
    opened = sum(open_alerts(engine).values())
    assert opened >= 1 and metric(at, "Open alerts") == str(opened)
    assert "hour from " in messages(at) or "day from " in messages(at)  # which bucket fired, not just its start
    with engine.connect() as c:
        first = c.scalar(
            select(Alert.id).where(Alert.acknowledged_utc.is_(None)).order_by(Alert.created_utc.desc(), Alert.id.desc())
        )
    at.button(key=f"ack-{first}").click().run()
    assert not at.exception
    with engine.connect() as c:
        assert c.scalar(select(Alert.acknowledged_utc).where(Alert.id == first)) is not None
    assert metric(at, "Open alerts") == str(opened - 1)
    engine.dispose()


def test_health_page_numbers_match_the_database(seeded, monkeypatch):
    url, folder, engine = seeded
    eval_dir = folder / "eval"
    eval_dir.mkdir(exist_ok=True)
    (eval_dir / "eval.md").write_text("# civmon eval\n\nhostility ROC-AUC **0.913**\n")
    at = open_app(monkeypatch, folder, url, "health", env={"CIVMON_EVAL_DIR": str(eval_dir)})
    with engine.connect() as c:
        outcomes = dict(c.execute(select(CollectionRun.status, func.count()).group_by(CollectionRun.status)).all())
        comments = c.scalar(select(func.count()).select_from(Comment))
    for status in ("ok", "partial", "failed"):
        assert metric(at, f"{status.capitalize()} runs") == str(outcomes.get(status, 0))
    assert metric(at, "Scoring backlog") == "0"
    table = at.dataframe[0].value
    assert int(table["comments"].sum()) == comments
    assert "429 Too Many Requests" in messages(at) and "0.913" in messages(at)


# --- the messages that replace a page -----------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_uninitialised_database_says_run_init(tmp_path, monkeypatch, page):
    write_config(tmp_path, f"sqlite:///{tmp_path / 'civmon.db'}")
    at = open_app(monkeypatch, tmp_path, f"sqlite:///{tmp_path / 'civmon.db'}", page)
    assert "civmon init" in messages(at)
    assert not (tmp_path / "civmon.db").exists()  # a reader leaves nothing behind


def test_unreachable_database_says_what_to_check(tmp_path, monkeypatch):
    url = "postgresql://civmon@127.0.0.1:9/civmon"  # the discard port: nothing answers
    write_config(tmp_path, url)
    at = open_app(monkeypatch, tmp_path, url)
    assert "cannot connect" in messages(at).lower() and "CIVMON_DATABASE__URL" in messages(at)


def test_empty_database_every_page(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'civmon.db'}"
    schema.upgrade(make_engine(url))
    write_config(tmp_path, url)
    for page in PAGES:
        at = open_app(monkeypatch, tmp_path, url, page)
        text = messages(at)
        if page == "health":
            assert "civmon init" in text and "No runs recorded yet" in text
        else:
            assert "No communities yet" in text and "civmon collect" in text


def test_registered_collected_scored_then_metrics(tmp_path, monkeypatch):
    """Each stage before the pages have numbers names the command that comes next."""
    url = f"sqlite:///{tmp_path / 'civmon.db'}"
    engine = make_engine(url)
    schema.upgrade(engine)
    write_config(tmp_path, url)
    ensure_community(engine, dashboard_seed.SPIKE)  # what `civmon init` does: registered, nothing collected
    text = messages(open_app(monkeypatch, tmp_path, url))
    assert "No comments yet" in text and "civmon collect" in text
    seed(engine, [Seed(f"u{i}", MONDAY + i * 60, None) for i in range(5)])  # collected, not scored
    for page in PAGES[:4]:
        assert "civmon score" in messages(open_app(monkeypatch, tmp_path, url, page))
    health = open_app(monkeypatch, tmp_path, url, "health")
    assert "No scores yet" in messages(health)
    seed(engine, [Seed(f"s{i}", MONDAY + i * 60, 0.2) for i in range(30)])  # scored, metrics not yet run
    for page in PAGES[:4]:
        assert "civmon metrics" in messages(open_app(monkeypatch, tmp_path, url, page))
    engine.dispose()


def test_one_community_no_alerts(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'civmon.db'}"
    engine = make_engine(url)
    schema.upgrade(engine)
    write_config(tmp_path, url)
    seed(
        engine,
        [
            Seed(
                f"o{i}",
                MONDAY + i * 600,
                0.9 if i % 5 == 0 else 0.1,
                thread=f"t{i // 10}",
                parent=f"o{i - 1}" if i % 10 else None,
                depth=i % 10,
            )
            for i in range(60)
        ],
    )
    rebuild(engine, MODEL)
    overview = open_app(monkeypatch, tmp_path, url)
    assert overview.dataframe[0].value["comments"].tolist() == [60]
    assert "Only one community" in messages(open_app(monkeypatch, tmp_path, url, "compare"))
    alerts = open_app(monkeypatch, tmp_path, url, "alerts")
    assert metric(alerts, "Open alerts") == "0" and "No alerts yet" in messages(alerts)
    community = open_app(monkeypatch, tmp_path, url, "community", {"view": "Escalation"})
    assert metric(community, "Comments in period") == "60"
    # Too few replies to hostile comments for reciprocity, too few hostile comments for concentration.
    assert messages(community).count("Not enough data") >= 2
    engine.dispose()


# --- PostgreSQL ---------------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_every_page_on_postgresql(request, tmp_path, monkeypatch):
    request.getfixturevalue("postgres_available")
    with scratch_postgres_database(POSTGRES_URL) as url:
        build(url, tmp_path)
        engine = make_engine(url)
        for page in PAGES:
            at = open_app(monkeypatch, tmp_path, url, page, {"community": SPIKE.key})
            if page == "overview":
                row = at.dataframe[0].value.set_index("community").loc[SPIKE.key]
                hand = by_hand(engine, community_id(engine, SPIKE.key), LAST_DAY - 6 * DAY, LAST_DAY + DAY)
                assert row["comments"] == hand["comments"]
                assert row["hostile_share"] == pytest.approx(100 * hand["share"])
        engine.dispose()
        streamlit.cache_resource.clear()  # close the app's connections before the database is dropped


def test_bodies_not_kept_means_no_text(seeded, monkeypatch):
    url, folder, engine = seeded
    query = {"community": SPIKE.key, "view": "Threads and comments"}
    at = open_app(monkeypatch, folder, url, "community", query, env={"CIVMON_PRIVACY__KEEP_BODIES": "false"})
    [worst] = [d.value for d in at.dataframe if "hostility" in d.value.columns]
    assert "text" not in worst.columns and "keep_bodies = false" in " ".join(c.value for c in at.caption)
    with engine.connect() as c:
        thread_id = c.scalar(select(Thread.id).where(Thread.platform_id == dashboard_seed.DERAIL_THREAD))
    at = open_app(
        monkeypatch, folder, url, "thread", {"thread": str(thread_id)}, env={"CIVMON_PRIVACY__KEEP_BODIES": "false"}
    )
    assert not any("idiot" in t for t in at.dataframe[0].value["comment"])


def test_bad_configuration_is_explained(tmp_path, monkeypatch):
    (tmp_path / "civmon.toml").write_text('[database]\nurl = "mysql://nope"\n[alerts]\nmin_comment = 3\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CIVMON_DATABASE__URL", raising=False)
    monkeypatch.delenv("CIVMON_CONFIG", raising=False)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    text = messages(at) + " ".join(c.value for c in at.code)
    assert "configuration has problems" in text and "min_comment" in text and "civmon config check" in text


def test_thread_tree_says_why_a_comment_is_not_scored():
    from dashboard.charts import thread_tree

    comments = pd.DataFrame(
        {
            "platform_id": ["a", "b", "c"],
            "parent": [None, "a", "a"],
            "depth": [0, 1, 1],
            "created_utc": [0, 60, 120],
            "text": ["Hello there", "Das ist eine schlechte Idee.", "fine"],
            "hostility": [0.1, None, None],
            "skip_reason": [None, "not English (language: de)", None],
        }
    )
    data = str(thread_tree(comments, THRESHOLD, None, "UTC").to_dict())
    assert "not scored: not English (language: de)" in data and "'0.10'" in data and "'not scored'" in data


# --- text from the internet is shown as text ----------------------------------------------------------------------

HOSTILE = [
    "![x](http://evil.example/pixel.png)",
    "[click me](http://evil.example/)",
    "<img src=http://evil.example/p.png>",
    "<script>alert(1)</script>",
    '<a href="http://evil.example/">a</a>',
    "<http://evil.example/auto>",
    "bare http://evil.example/x and www.evil.example and me@evil.example",
    ":red[coloured] :material/lock: :smile: :streamlit:",
    "$x^2$ and $$y$$",
    "back\\slash \\*not em\\* `code` ``two``",
    "**bold** _em_\n# heading\n- item\n> quote",
    "&lt;img src=x&gt; &#60;b&#62;",
    "[ref]: http://evil.example/ref\n[ref]",
    "javascript:alert(1)",
]
HOSTILE_DAY = MONDAY + 30 * DAY
# The links the app makes itself: to the originals (from ids, each percent-encoded) and to its own pages.
TRUSTED_LINK = re.compile(
    r"https://www\.reddit\.com/r/[\w%.~-]+/comments/[\w%.~-]+/(_/[\w%.~-]+/)?"
    r"|https://news\.ycombinator\.com/item\?id=[\w%.~-]+"
    r"|(community|thread)\?[\w%.~+=&-]+"
)
LINK_COLUMNS = ("link", "page", "tree", "open")
# What Streamlit's Markdown does beyond CommonMark, as its frontend (1.67) finds it:
# remark-math, loaded where its test finds $...$ or $$...$$ outside code and escapes ...
MATH_IGNORED = re.compile(r"(?:^|(?<=\n)) {0,3}(`{3,}|~{3,})[\s\S]*?(?:\n[ \t]*\1|$)|(?<!`)(`+)[^`\n]+\2(?!`)|\\[\\$`]")
MATH = re.compile(r"(?<!\$)\$\$+(?!\$)[\s\S]*?\$\$|(?<!\$)\$(?![\s$])[^$\n]*?[^\s$]\$(?!\d)")
# ... remark-directive's :name[...] (colours, badges) where the colon is not escaped ...
DIRECTIVE = re.compile(r"(?<!\\)(?:\\\\)*:[a-z][a-z0-9-]*\[")
# ... and the rewrites of parsed text, where escapes are already undone: icons, the logo, emoji shortcodes, and
# remark-gfm's bare URLs and e-mail addresses.
TEXT_REWRITES = re.compile(
    r":material[/_]\w+:|:streamlit:|:[\w+-]+:|https?://|www(?=\.)|[-.\w+]+@[-\w]+(?:\.[-\w]+)+", re.IGNORECASE
)


def markdown_sources(at: AppTest) -> list[str]:
    """Every string on the page that Streamlit renders as Markdown: element bodies, labels and help tooltips."""
    sources = []
    for node in [*at.main, *at.sidebar]:
        if isinstance(node, (et.Markdown, et.HeadingBase, et.AlertBase, et.Toast, et.Metric)):
            sources.append(node.value)
        for attribute in ("label", "help"):
            text = getattr(node, attribute, None)
            if isinstance(text, str):
                sources.append(text)
    return sources


def markup_in(source: str) -> list[str]:
    """What of a Markdown source would become an image, a link, HTML, math, a directive or a rewrite in Streamlit."""
    found = [m.group() for m in MATH.finditer(MATH_IGNORED.sub("_", source))]
    found += [m.group() for m in DIRECTIVE.finditer(source)]
    for token in inline_tokens(source):
        if token.type in ("image", "html_inline", "html_block"):
            found.append(f"{token.type}: {token.content}")
        elif token.type == "link_open" and not TRUSTED_LINK.fullmatch(str(token.attrs["href"])):
            found.append(f"link: {token.attrs['href']}")
        elif token.type == "text":
            found += [m.group() for m in TEXT_REWRITES.finditer(token.content)]
    return found


def assert_shown_as_text(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    sources = markdown_sources(at)
    assert sources
    for source in sources:
        assert not markup_in(source), source
    for frame in at.dataframe:
        for column in set(LINK_COLUMNS) & set(frame.value.columns):
            links = frame.value[column].dropna()
            assert all(TRUSTED_LINK.fullmatch(link) for link in links), list(links)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, dict[str, int]]:
    """A community per hostile string, named by it; its thread titled, its comments written and signed by it; an
    open alert about that thread and a failed run whose error quotes it. Returns thread ids by string."""
    folder = tmp_path_factory.mktemp("hostile")
    url = f"sqlite:///{folder / 'civmon.db'}"
    engine = make_engine(url)
    schema.upgrade(engine)
    for i, text in enumerate(HOSTILE):
        items = [
            Seed(f"h{i}_{j}", HOSTILE_DAY + j * 600, 0.8 if j % 3 else 0.1, thread=f"h{i}", author=text)
            for j in range(24)
        ]
        seed(engine, items, CommunityRef("reddit", f"hostile{i}"))
    threads = {}
    with transaction(engine) as session:
        for i, text in enumerate(HOSTILE):
            thread = session.scalars(select(Thread).where(Thread.platform_id == f"h{i}")).one()
            thread.title, threads[text] = text, thread.id
            # The store refuses such names now; a database written before (or by hand) may still hold them.
            session.execute(update(Community).where(Community.id == thread.community_id).values(name=text))
            session.execute(update(Comment).where(Comment.thread_id == thread.id).values(body=text))
            session.add_all(
                [
                    Alert(
                        community_id=thread.community_id,
                        kind="thread",
                        subject=text,
                        model_version=MODEL,
                        start_utc=HOSTILE_DAY,
                        value=0.6,
                        baseline=0.1,
                        scored=24,
                        message=text,
                        created_utc=HOSTILE_DAY + DAY,
                    ),
                    CollectionRun(
                        job="collect",
                        community_id=thread.community_id,
                        started_utc=HOSTILE_DAY + DAY,
                        finished_utc=HOSTILE_DAY + DAY + 5,
                        status=RunStatus.FAILED,
                        errors=1,
                        error=text,
                    ),
                ]
            )
    rebuild(engine, MODEL)
    engine.dispose()
    write_config(folder, url)
    return url, folder, threads


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_on_community_and_thread_pages(hostile, monkeypatch, text):
    url, folder, threads = hostile
    key = f"reddit/{text}"
    for view in ("Trends", "Threads and comments", "Escalation"):
        at = open_app(monkeypatch, folder, url, "community", {"community": key, "view": view})
        assert_shown_as_text(at)
        assert [displayed(t.value) for t in at.title] == [" ".join(f"r/{text}".split())]
    at = open_app(monkeypatch, folder, url, "thread", {"thread": str(threads[text])})
    assert_shown_as_text(at)
    assert [displayed(h.value) for h in at.subheader] == [" ".join(text.split())]  # the title, as written
    assert " ".join(key.split()) in messages(at)


@pytest.mark.parametrize("page", ["overview", "compare", "alerts", "health"])
def test_hostile_text_on_pages_of_every_community(hostile, monkeypatch, page):
    url, folder, _ = hostile
    at = open_app(monkeypatch, folder, url, page)
    assert_shown_as_text(at)
    if page == "alerts":  # every alert names its community and thread
        shown = messages(at)
        assert all(" ".join(text.split()) in shown for text in HOSTILE)
    if page == "health":
        assert all(" ".join(text.split()) in messages(at) for text in HOSTILE[:10])  # the ten latest errors


# Every bidirectional control (embeddings, overrides, isolates, marks): plain() drops them, so none can reorder a title
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f",
        "\u061c"]  # fmt: skip
WITH_BIDI = [f"a{c}b.exe" for c in BIDI] + ["\u202eevil\u202c [x](javascript:1)", "\u2067\u202e*bold*\u2069 tail"]


@pytest.mark.parametrize("text", HOSTILE + WITH_BIDI)
def test_plain_renders_exactly_the_text(text):
    from dashboard.ui import plain

    assert not markup_in(plain(text))
    assert displayed(plain(text)) == " ".join(text.translate(dict.fromkeys(map(ord, BIDI))).split())


# --- old data: each community measured against its own newest data -------------------------------------------------

RECENT, ARCHIVE, SPARSE = (CommunityRef("reddit", n) for n in ("recent", "archive", "sparse"))
RECENT_LAST = MONDAY + 27 * DAY  # four weeks of data, years before now
ARCHIVE_BUSY = RECENT_LAST - 4 * 365 * DAY  # one busy day, then a comment a month: recorded traffic looks so
ARCHIVE_LAST = ARCHIVE_BUSY + 5 * 30 * DAY
LONGEST_TILE = 8  # characters a metric tile shows whole at the page's width (seven tiles to a row)


@pytest.fixture(scope="module")
def aged(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Engine]:
    folder = tmp_path_factory.mktemp("aged")
    url = f"sqlite:///{folder / 'civmon.db'}"
    engine = make_engine(url)
    schema.upgrade(engine)
    hostility = lambda j: 0.8 if j % 4 == 0 else 0.2  # noqa: E731
    recent = [
        Seed(f"r{d}_{j}", MONDAY + d * DAY + j * 1800, hostility(j), thread=f"r{d}", parent=f"r{d}_0" if j else None)
        for d in range(28)
        for j in range(20)
    ]
    busy = [Seed(f"a_{j}", ARCHIVE_BUSY + j * 60, hostility(j), thread=f"a{j // 30}") for j in range(300)]
    tail = [Seed(f"a_tail{m}", ARCHIVE_BUSY + m * 30 * DAY + 3600, 0.3, thread="a_tail") for m in range(1, 6)]
    sparse = [Seed(f"s{j}", RECENT_LAST + j * 600, 0.3, thread="s") for j in range(5)]
    for ref, items in ((RECENT, recent), (ARCHIVE, [*busy, *tail]), (SPARSE, sparse)):
        seed(engine, items, ref)
    with transaction(engine) as session:  # one comment deleted by its author: no text, no author
        session.execute(
            update(Comment).where(Comment.platform_id == "a_1").values(state="deleted", body=None, author=None)
        )
    rebuild(engine, MODEL)
    write_config(folder, url)
    yield url, folder, engine
    engine.dispose()


@pytest.mark.parametrize(
    ("ref", "last", "days"),
    [(RECENT, RECENT_LAST, 28), (ARCHIVE, ARCHIVE_LAST, 365)],
    ids=["recent", "archive"],
)
def test_old_data_community_page_shows_its_own_newest_data(aged, monkeypatch, ref, last, days):
    url, folder, engine = aged
    at = open_app(monkeypatch, folder, url, "community", {"community": ref.key})
    until = last + DAY
    hand = by_hand(engine, community_id(engine, ref.key), until - days * DAY, until)
    assert hand["comments"] > 0
    assert metric(at, "Comments in period") == f"{hand['comments']:,}"
    assert metric(at, "Alliance index") == f"{hand['alliance']:+.2f}"
    shown = messages(at)
    assert f"Measured up to r/{ref.name}'s newest data, {ui_date(last)}." in shown
    widened = "The last 28 days hold fewer than 10 scored comments: showing the last 365 days."
    assert (widened in shown) == (days != 28)
    assert at.get("vega_lite_chart")  # the trends draw


def ui_date(epoch: int) -> str:
    return f"{pd.Timestamp(epoch, unit='s'):%d %b %Y}"


def test_old_data_overview_rows_each_end_at_their_newest_data(aged, monkeypatch):
    url, folder, engine = aged
    at = open_app(monkeypatch, folder, url)
    table = at.dataframe[0].value.set_index("community")
    expected = {RECENT.key: (RECENT_LAST, 7), ARCHIVE.key: (ARCHIVE_LAST, 365)}
    for key, (last, days) in expected.items():
        row, until = table.loc[key], last + DAY
        hand = by_hand(engine, community_id(engine, key), until - days * DAY, until)
        assert row["period"] == f"{days} days to {ui_date(last)}"
        assert row["comments"] == hand["comments"] > 0
        assert row["alliance"] == pytest.approx(hand["alliance"])
    assert "measured against its own newest data" in messages(at)


def test_old_data_thread_picker_offers_threads(aged, monkeypatch):
    url, folder, _ = aged
    at = open_app(monkeypatch, folder, url, "thread", {"community": ARCHIVE.key})
    assert at.selectbox(key="thread-pick").value is not None
    assert metric(at, "Comments")


def test_deleted_comment_says_so_in_the_reply_tree(aged, monkeypatch):
    url, folder, engine = aged
    with engine.connect() as c:
        thread_id = c.scalar(select(Thread.id).where(Thread.platform_id == "a0"))
    at = open_app(monkeypatch, folder, url, "thread", {"thread": str(thread_id)})
    [tree] = at.dataframe
    assert "[deleted]" in tree.value["comment"].tolist()
    assert tree.proto.placeholder == "—"  # its missing author shows a dash, not "None"


def test_long_periods_label_their_years():
    from dashboard import charts
    from monitor.metrics.rollups import BucketStats

    for days, expected in ((28, "%b %d"), (365, "%b %Y")):
        stats = [BucketStats(MONDAY, 20, 20, None, None, None, None, None, None)]
        frame = charts.series_frame(stats, "hostility", "UTC", (MONDAY, MONDAY + days * DAY, "day"))
        chart = charts.trend(frame, "hostility", "day", "UTC").to_dict()
        assert chart["layer"][0]["encoding"]["x"]["axis"]["format"] == expected


@pytest.mark.parametrize(("late_hours", "scale"), [(3, None), (24 * 30, "symlog")])
def test_thread_tree_log_scale_for_late_replies(late_hours, scale):
    """A reply a month on would squeeze the conversation into the chart's first pixels: the axis turns logarithmic."""
    from dashboard.charts import thread_tree

    comments = pd.DataFrame(
        {
            "platform_id": ["a", "b", "c"],
            "parent": [None, "a", "a"],
            "depth": [0, 1, 1],
            "created_utc": [0, 600, late_hours * 3600],
            "text": ["one", "two", "three"],
            "hostility": [0.1, 0.2, 0.9],
            "skip_reason": [None, None, None],
        }
    )
    points = thread_tree(comments, THRESHOLD, None, "UTC").to_dict()["layer"][1]["encoding"]["x"]
    assert points.get("scale", {}).get("type") == scale
    assert ("log scale" in points["title"]) == (scale is not None)


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("ref", [RECENT, ARCHIVE, SPARSE], ids=["recent", "archive", "sparse"])
def test_tiles_fit_their_value(aged, monkeypatch, page, ref):
    """A tile shows a short value; what a number needs, and why it is missing, is in its help."""
    url, folder, _ = aged
    query = {"community": ref.key, "view": "Escalation" if page == "community" else "Trends"}
    at = open_app(monkeypatch, folder, url, page, query)
    for tile in at.metric:
        assert len(tile.value) <= LONGEST_TILE, (tile.label, tile.value)
    if page == "community" and ref == SPARSE:
        tile = next(m for m in at.metric if m.label == "Mean hostility")
        assert tile.value == "—" and "Not enough data: 5 scored comments, 10 needed." in tile.help


def test_tables_and_pickers_show_internet_text_without_controls(tmp_path, monkeypatch):
    """A title with U+202E shows reversed ("gnp.exe" as "exe.png") in a table cell or a picker's option as in
    Markdown, and runs on into what the app writes after it; a control character shows as a box."""
    url = f"sqlite:///{tmp_path / 'civmon.db'}"
    engine = make_engine(url)
    schema.upgrade(engine)
    spoof = "abc\u202egnp.exe\u202c safe\x07\x1b[31m"
    seed(engine, [Seed(f"b{j}", HOSTILE_DAY + j * 600, 0.8, thread="b", author=spoof) for j in range(24)])
    with transaction(engine) as session:
        thread = session.scalars(select(Thread).where(Thread.platform_id == "b")).one()
        thread.title, thread_id = spoof, thread.id
        session.execute(update(Comment).where(Comment.thread_id == thread.id).values(body=spoof))
    rebuild(engine, MODEL)
    engine.dispose()
    write_config(tmp_path, url)
    hidden = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\x00-\x1f\x7f-\x9f]")
    key = "reddit/seeded"
    pages = [("community", {"community": key, "view": "Threads and comments"}), ("thread", {"thread": str(thread_id)})]
    for page, query in [*pages, ("thread", {"community": key, "period": "all"})]:
        at = open_app(monkeypatch, tmp_path, url, page, query)
        assert not at.exception
        cells = [v for frame in at.dataframe for v in frame.value.to_numpy().ravel() if isinstance(v, str)]
        options = [o for box in at.selectbox for o in box.options]
        assert any("abcgnp.exe safe" in c for c in cells + options)  # the text is there, in one line
        assert not [c for c in cells + options if hidden.search(c)]


@pytest.mark.parametrize("wanted", ["²", "99999999999999999999999", "2147483648", "-1", "1e3", " 1"])
def test_a_thread_link_with_no_such_id_says_so_and_offers_the_picker(seeded, monkeypatch, wanted):
    url, folder, _ = seeded
    at = open_app(monkeypatch, folder, url, "thread", {"thread": wanted})
    assert not at.exception
    assert "No thread with id" in messages(at) and at.selectbox(key="thread-pick").value is not None


def test_a_community_link_with_no_such_community_says_so(seeded, monkeypatch):
    url, folder, _ = seeded
    at = open_app(monkeypatch, folder, url, "community", {"community": "reddit/AskCalmm"})
    assert not at.exception and "No community reddit/AskCalmm in the database" in messages(at)
    at = open_app(monkeypatch, folder, url, "community", {"community": "reddit/AskCalm"})
    assert "No community" not in messages(at)


def test_a_change_that_rounds_to_nothing_has_no_sign_or_arrow():
    from dashboard.ui import change

    assert change(-0.001, percent=False) == ("±0.00", True)  # "-0.00" with a red arrow reported a fall
    assert change(-0.0004, percent=True) == ("±0.0 pts", True)
    assert change(0.004, percent=True) == ("+0.4 pts", False) and change(-0.02, percent=False) == ("-0.02", False)


@pytest.mark.parametrize("text", HOSTILE + WITH_BIDI)
def test_a_hint_shows_its_commands_as_code_and_the_rest_as_text(text):
    from dashboard.ui import with_code

    hint = with_code(f"run `civmon init` in {text}, then `civmon status`")
    assert hint.startswith("run `civmon init` in ") and hint.endswith(", then `civmon status`")
    # the hints' code spans name commands; the text around them may quote what a user or a platform wrote
    assert not markup_in(with_code(f"{text} `civmon init` {text}")) and not markup_in(with_code(f"odd ` {text}"))


def test_a_hint_ends_in_one_period_whether_or_not_it_was_written_with_one():
    from dashboard.ui import hint_markdown

    # the database page appended "." itself while other pages trimmed first: a hint ending in "." showed ".."
    shown = hint_markdown("run `civmon init`.")
    assert shown == hint_markdown("run `civmon init`")
    assert shown.startswith("run `civmon init`") and shown.count(".") == 1
