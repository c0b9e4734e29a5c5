"""`civmon serve` over real HTTP on loopback: the real server process, Google's own Perspective client, plain JSON,
every error with its status, quotas, revoked keys, doNotStore, and communityId requests in status and dashboard."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from googleapiclient import discovery
from sqlalchemy import insert, select
from test_dashboard import metric, open_app

from monitor.api.intake import community_name
from monitor.scoring import datasets
from monitor.store.db import make_engine
from monitor.store.models import StoreFact, Thread

from api_server import Server, free_port, running_server, write_config
from conftest import civmon, refuse_comment_inserts

ANALYZE = "/v1alpha1/comments:analyze"
needs_data = pytest.mark.skipif(not datasets.available(), reason=f"labelled data not found at {datasets.data_dir()}")


def create_key(folder: Path, name: str, qps: float = 1000, *communities: str) -> str:
    stores = [arg for community in communities for arg in ("--community", community)]
    result = civmon(folder, "keys", "create", name, "--qps", str(qps), *stores)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def initialised(folder: Path, db_url: str, extra: str = "") -> Path:
    write_config(folder, db_url, extra)
    result = civmon(folder, "init")
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    folder = initialised(tmp_path_factory.mktemp("serve"), "sqlite:///civmon.db", "[api]\nmax_request_bytes = 65536\n")
    keys = {
        "tester": create_key(folder, "tester", 1000, "*"),
        "slow": create_key(folder, "slow", 1),
        "doomed": create_key(folder, "doomed", 1000),
        "forum": create_key(folder, "forum", 1000, "forum-1"),
    }
    with running_server(folder) as running:
        running.keys = keys  # type: ignore[attr-defined]
        yield running


def analyze(server: Server, body: object, key: str | None = "tester", **kwargs: object) -> requests.Response:
    params = {"key": server.keys[key]} if key else {}  # type: ignore[attr-defined]
    return requests.post(server.url + ANALYZE, params=params, json=body, timeout=60, **kwargs)


def toxicity(text: str, **fields: object) -> dict[str, object]:
    return {"comment": {"text": text}, "requestedAttributes": {"TOXICITY": {}}, **fields}


def test_googles_own_client_analyzes_through_the_discovery_document(server):
    client = discovery.build(
        "commentanalyzer",
        "v1alpha1",
        developerKey=server.keys["tester"],  # type: ignore[attr-defined]
        discoveryServiceUrl=f"{server.url}/$discovery/rest?version=v1alpha1",
        static_discovery=False,
    )
    body = {"comment": {"text": "You are a pathetic idiot."}, "requestedAttributes": {"TOXICITY": {}, "RESPECT": {}}}
    response = client.comments().analyze(body=body).execute()
    scores = response["attributeScores"]
    assert set(scores) == {"TOXICITY", "RESPECT"}
    assert scores["TOXICITY"]["summaryScore"]["type"] == "PROBABILITY"
    assert scores["TOXICITY"]["summaryScore"]["value"] > 0.5 > scores["RESPECT"]["summaryScore"]["value"]
    assert response["languages"] == ["en"]


def test_bearer_tokens_work_as_keys_do_and_the_key_never_reaches_the_log(server):
    secret = server.keys["tester"]  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {secret}"}
    response = requests.post(server.url + ANALYZE, json=toxicity("Thanks, that helps."), headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["attributeScores"]["TOXICITY"]["summaryScore"]["value"] < 0.5
    log = server.log_text()
    assert "key=tester" in log and secret not in log and "?key" not in log


def test_the_response_echoes_client_token_and_spans_whole_text_by_default(server):
    response = analyze(server, toxicity("Nice work. Really.", clientToken="abc-1", languages=["en-US"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["clientToken"] == "abc-1" and body["detectedLanguages"] == ["en"]
    [span] = body["attributeScores"]["TOXICITY"]["spanScores"]
    assert (span["begin"], span["end"]) == (0, len("Nice work. Really."))


def test_thresholds_leave_out_lower_scores_and_unsupported_attributes_can_be_dropped(server):
    text = "Thank you so much, this was really kind."
    body = {
        "comment": {"text": text},
        "requestedAttributes": {"TOXICITY": {"scoreThreshold": 0.9}, "WARMTH": {}, "SEVERE_TOXICITY": {}},
        "dropUnsupportedAttributes": True,
    }
    response = analyze(server, body)
    assert response.status_code == 200, response.text
    assert set(response.json()["attributeScores"]) == {"WARMTH"}  # TOXICITY below 0.9; SEVERE_TOXICITY dropped


ERRORS = [
    ("no key", {"body": toxicity("hello there friend")}, None, 403, "PERMISSION_DENIED", "missing a valid API key"),
    ("wrong key", {"body": toxicity("hello there")}, "civmon_nope", 400, "INVALID_ARGUMENT", "API key not valid"),
    ("empty", {"body": toxicity("   ")}, "tester", 400, "INVALID_ARGUMENT", "Comment must be non-empty"),
    ("no text", {"body": {"comment": {}, "requestedAttributes": {"TOXICITY": {}}}}, "tester", 400, "", "non-empty"),
    ("too long", {"body": toxicity("é" * 10_241)}, "tester", 400, "INVALID_ARGUMENT", "20,482 bytes"),
    ("body too large", {"data": b"{" + b" " * 70_000 + b"}"}, "tester", 413, "INVALID_ARGUMENT", "at most 65,536"),
    ("not JSON", {"data": b'{"comment": '}, "tester", 400, "INVALID_ARGUMENT", "not valid JSON"),
    ("not an object", {"body": ["a"]}, "tester", 400, "INVALID_ARGUMENT", "must be a JSON object"),
    ("text a number", {"body": {**toxicity(""), "comment": {"text": 5}}}, "tester", 400, "", "comment.text"),
    ("flag a string", {"body": toxicity("hi there", doNotStore="yes")}, "tester", 400, "", "doNotStore"),
    ("unknown field", {"body": toxicity("hi there", colour="red")}, "tester", 400, "", "Unknown name 'colour'"),
    ("no attribute", {"body": {"comment": {"text": "hi"}, "requestedAttributes": {}}}, "tester", 400, "", "at least"),
    (
        "unsupported attribute",
        {"body": {"comment": {"text": "hi"}, "requestedAttributes": {"SEVERE_TOXICITY": {}}}},
        "tester",
        400,
        "INVALID_ARGUMENT",
        "Attribute SEVERE_TOXICITY is not supported",
    ),
    ("language asked", {"body": toxicity("hi there", languages=["de"])}, "tester", 400, "", "languages: de"),
    (
        "language found",
        {"body": toxicity("Das ist ein sehr schöner Tag heute und ich freue mich sehr darauf")},
        "tester",
        400,
        "",
        "does not support the comment's language: it reads as de",
    ),
    (
        "score type",
        {"body": {"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {"scoreType": "RAW"}}}},
        "tester",
        400,
        "",
        "PROBABILITY, not RAW",
    ),
    ("HTML", {"body": {**toxicity(""), "comment": {"text": "<b>hi</b>", "type": "HTML"}}}, "tester", 400, "", "HTML"),
    ("languages mixed", {"body": toxicity("hi there", languages=["en", "fr"])}, "tester", 400, "", "languages: fr"),
    ("long session", {"body": toxicity("hi you", sessionId="s" * 257)}, "tester", 400, "", "sessionId"),
    ("placeholder", {"body": toxicity("[deleted]")}, "tester", 400, "", "cannot be scored: [deleted]"),
]


@pytest.mark.parametrize(
    ("sent", "key", "code", "status", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_errors_come_in_perspectives_shape_with_its_codes(server, sent, key, code, status, message):
    params = {"key": server.keys.get(key, key)} if key else {}  # type: ignore[attr-defined]
    if "data" in sent:
        response = requests.post(
            server.url + ANALYZE, params=params, data=sent["data"], headers={"Content-Type": "application/json"}
        )
    else:
        response = requests.post(server.url + ANALYZE, params=params, json=sent["body"], timeout=60)
    assert response.status_code == code, response.text
    error = response.json()["error"]
    assert error["code"] == code and message in error["message"], error
    assert error["status"] == (status or "INVALID_ARGUMENT")


def test_a_key_past_its_quota_gets_429_with_retry_after(server):
    answers = [analyze(server, toxicity("Good point, thanks."), key="slow") for _ in range(3)]
    assert answers[0].status_code == 200, answers[0].text
    refused = [a for a in answers if a.status_code == 429]
    assert refused, [a.status_code for a in answers]
    assert int(refused[0].headers["Retry-After"]) >= 1
    assert refused[0].json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_batch_calls_count_each_text_against_the_quota(server):
    def batch(texts: int) -> requests.Response:
        params = {"key": server.keys["slow"]}  # type: ignore[attr-defined]
        return requests.post(f"{server.url}/v1/score", params=params, json={"texts": ["ok"] * texts}, timeout=60)

    too_many = batch(61)  # a minute of 1 text a second holds 60
    assert too_many.status_code == 400 and "Send fewer texts" in too_many.json()["error"]["message"]
    time.sleep(1.1)
    answers = [batch(30) for _ in range(3)]  # 90 texts within a second or so: past the minute's 60
    assert [a.status_code for a in answers][:1] == [200] and 429 in [a.status_code for a in answers]


def test_a_body_without_content_type_is_read_as_json_as_perspective_did(server):
    params = {"key": server.keys["tester"]}  # type: ignore[attr-defined]
    response = requests.post(server.url + ANALYZE, params=params, data=json.dumps(toxicity("Fair enough.")))
    assert response.status_code == 200, response.text


def test_a_community_id_outside_the_name_rule_is_stored_under_a_name_derived_from_it(server):
    response = analyze(server, toxicity("Well said, thank you.", communityId="Coral:https://news.example.com/"))
    assert response.status_code == 200, response.text
    names = [row[2] for row in store_snapshot(server.folder)["communities"]]
    assert any(n.startswith("coral:https:-news.example.com-") for n in names), names


def test_a_key_stores_only_under_its_communities_and_otherwise_says_how(server):
    assert analyze(server, toxicity("Thanks all.", communityId="forum-1"), key="forum").status_code == 200
    refused = analyze(server, toxicity("Thanks all.", communityId="forum-2"), key="forum")
    assert refused.status_code == 403 and "--community" in refused.json()["error"]["message"]
    only_scored = analyze(server, toxicity("Thanks all.", communityId="forum-2", doNotStore=True), key="forum")
    assert only_scored.status_code == 200
    assert "forum-2" not in [row[2] for row in store_snapshot(server.folder)["communities"]]
    listed = civmon(server.folder, "keys", "list").stdout
    assert "forum-1" in listed and "scores only" in listed


def test_community_ids_differing_only_in_case_are_different_communities():
    assert community_name("my-forum") == "my-forum"
    assert community_name("MY-FORUM") not in ("my-forum", community_name("My-Forum"))
    assert community_name("MY-FORUM").startswith("my-forum-")
    assert community_name("caf\u00e9") != community_name("cafe\u0301") != community_name("cafe")


def test_a_revoked_key_is_refused_from_its_next_request(server):
    assert analyze(server, toxicity("Fine by me."), key="doomed").status_code == 200
    assert civmon(server.folder, "keys", "revoke", "doomed").returncode == 0
    refused = analyze(server, toxicity("Fine by me."), key="doomed")
    assert refused.status_code == 400 and "API key not valid" in refused.json()["error"]["message"]
    listed = civmon(server.folder, "keys", "list").stdout
    assert "doomed" in listed and "tester" in listed and server.keys["tester"] not in listed  # type: ignore[attr-defined]


def store_snapshot(folder: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(folder / "civmon.db") as db:
        return {
            t: db.execute(f"SELECT * FROM {t}").fetchall() for t in ("communities", "threads", "comments", "scores")
        }


@pytest.mark.parametrize(
    "fields",
    [
        {"communityId": "private-forum", "doNotStore": True},
        {"communityId": "", "sessionId": ""},  # proto3: an empty string is an id the client did not set
    ],
)
def test_do_not_store_leaves_the_store_and_the_log_without_the_comment(server, fields):
    before = store_snapshot(server.folder)
    marker = "Zyxwvut the unforgettable marker phrase you clown"
    response = analyze(server, toxicity(marker, **fields))
    assert response.status_code == 200, response.text
    assert store_snapshot(server.folder) == before
    assert "Zyxwvut" not in server.log_text()


@needs_data
def test_scores_equal_civmon_score_input_whatever_else_is_in_flight(server, tmp_path):
    """Requests sent 16 at a time share model calls; each text's scores must still be those of `civmon score`."""
    texts = [e.text for e in datasets.load("goemotions_hostile", "test")[:60]]
    texts += ["ｙｏｕ ａｒｅ ａｎ ｉｄｉｏｔ", "Great job 👍🏽 really!", "> quoted insult\n\nI agree with you."]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    result = civmon(server.folder, "score", "--input", str(corpus), "--output", str(tmp_path / "out.jsonl"))
    assert result.returncode == 0, result.stderr
    expected = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    attributes = {"TOXICITY": {}, "RESPECT": {}, "WARMTH": {}, "ALLIANCE": {}, "INSULT": {}, "IDENTITY_ATTACK": {}}
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(lambda t: analyze(server, {"comment": {"text": t}, "requestedAttributes": attributes}), texts)
        )
    version = requests.get(f"{server.url}/healthz", timeout=10).json()["model_version"]
    for text, row, answer in zip(texts, expected, answers, strict=True):
        assert row["model_version"] == version
        if row["reason"] is not None:
            assert answer.status_code == 400, (text, answer.text)
            continue
        scores = {name: s["summaryScore"]["value"] for name, s in answer.json()["attributeScores"].items()}
        assert scores == {
            "TOXICITY": row["perspective_toxicity"],  # on Perspective's scale, as `civmon score` gives it
            "RESPECT": row["respect"],
            "WARMTH": row["warmth"],
            "ALLIANCE": row["alliance"],
            "INSULT": row["insult"],
            "IDENTITY_ATTACK": row["identity_attack"],
        }, text
    mapped = [(r["hostility"], r["perspective_toxicity"]) for r in expected if r["reason"] is None]
    assert any(abs(h - t) > 0.01 for h, t in mapped)  # the model's TOXICITY, not hostility passed through
    # nor hostility mapped: the continuity output ranks some comments otherwise than hostility does
    assert any(h1 < h2 and t1 > t2 for h1, t1 in mapped for h2, t2 in mapped)


def test_the_batch_endpoint_writes_what_civmon_score_input_writes(server):
    response = requests.post(
        f"{server.url}/v1/score",
        params={"key": server.keys["tester"]},  # type: ignore[attr-defined]
        json={"texts": ["You utter moron.", None, "[removed]", "x" * 30_000]},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    rows = body["results"]
    assert [r["row"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["reason"] is None and rows[0]["hostility"] > 0.5
    assert rows[1]["reason"] == "empty" and rows[1]["hostility"] is None
    assert rows[2]["reason"].startswith("[removed]") and "too long for the API" in rows[3]["reason"]
    assert set(body["dimensions"]) <= set(rows[0]) and body["model_version"] == rows[0]["model_version"]


SPAN_TEXTS = [
    "You are a clown.\r\nI mean it. Seriously!",
    "Family 👩‍👩‍👧 day. Then 🇩🇪 flags! You idiot.",
    "The cafe\u0301 was awful, you fool. Zalgo t\u0336e\u0336x\u0336t. ok then",
]


@pytest.mark.parametrize("text", SPAN_TEXTS)
def test_span_offsets_point_at_the_sentences_of_the_original_text(server, text):
    body = {"comment": {"text": text}, "requestedAttributes": {"TOXICITY": {}}, "spanAnnotations": True}
    response = analyze(server, body)
    assert response.status_code == 200, response.text
    spans = response.json()["attributeScores"]["TOXICITY"]["spanScores"]
    pieces = [text[s["begin"] : s["end"]] for s in spans]
    expected = [s for line in text.splitlines() for s in line.replace(". ", ".\n").replace("! ", "!\n").splitlines()]
    assert pieces == expected
    alone = requests.post(
        f"{server.url}/v1/score",
        params={"key": server.keys["tester"]},  # type: ignore[attr-defined]
        json={"texts": pieces},
        timeout=60,
    ).json()["results"]
    assert [s["score"]["value"] for s in spans] == [r["perspective_toxicity"] for r in alone]  # TOXICITY: mapped


def test_health_metrics_and_the_openapi_document(server):
    health = requests.get(f"{server.url}/healthz", timeout=10).json()
    assert health["status"] == "ok" and "TOXICITY" in health["attributes"]
    metrics = requests.get(f"{server.url}/metrics", timeout=10).text
    assert 'civmon_api_requests_total{code="200",endpoint="/v1alpha1/comments:analyze"}' in metrics
    assert "civmon_model_batch_texts_bucket" in metrics and "key=" not in metrics
    schema = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    assert ANALYZE in schema["paths"] and "/v1/score" in schema["paths"]
    assert requests.get(f"{server.url}/docs", timeout=10).status_code == 200


def test_no_auth_is_refused_beyond_loopback(tmp_path):
    initialised(tmp_path, "sqlite:///civmon.db")
    result = civmon(tmp_path, "serve", "--no-auth", "--host", "0.0.0.0", timeout=60)
    assert result.returncode != 0
    assert "--no-auth serves only this machine" in result.stderr and "Traceback" not in result.stderr


def test_a_full_queue_answers_503_with_retry_after(tmp_path):
    folder = initialised(tmp_path, "sqlite:///civmon.db", "[api]\nmax_queue_texts = 1\nbatch_window_ms = 50\n")
    with running_server(folder, "--no-auth") as running:
        text = "One sentence. Two sentences. Three! Four? Five. Six. Seven. " * 3
        body = {"comment": {"text": text}, "requestedAttributes": {"TOXICITY": {}}, "spanAnnotations": True}
        with ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(lambda _: requests.post(running.url + ANALYZE, json=body, timeout=60), range(24)))
    codes = [a.status_code for a in answers]
    assert 200 in codes and 503 in codes, codes
    refused = next(a for a in answers if a.status_code == 503)
    assert int(refused.headers["Retry-After"]) >= 1 and refused.json()["error"]["status"] == "UNAVAILABLE"


def test_community_requests_join_the_monitor_in_status_and_dashboard(db_url, tmp_path, monkeypatch):
    folder = initialised(tmp_path, db_url)
    texts = ["You are all idiots here.", "Thanks everyone, great thread!", "I disagree, but fair point."]
    with running_server(folder, "--no-auth") as running:
        for n, text in enumerate(texts):
            body = toxicity(text, communityId="forum-1", sessionId=f"user{n % 2}@example.com")
            assert requests.post(running.url + ANALYZE, json=body, timeout=60).status_code == 200
    engine = make_engine(db_url)
    with engine.connect() as connection:
        threads = set(connection.execute(select(Thread.platform_id)).scalars())
    engine.dispose()
    # a thread a session, named by a hash keyed as authors are: a guessed session id (an e-mail address) hashed
    # without the key must not find its thread
    unkeyed = {f"s{hashlib.blake2b(f'user{n}@example.com'.encode(), digest_size=15).hexdigest()}" for n in (0, 1)}
    assert len(threads) == 2 and all(t.startswith("s") for t in threads) and not threads & unkeyed
    status = civmon(folder, "status")
    assert status.returncode == 0, status.stderr
    [line] = [line for line in status.stdout.splitlines() if "api/forum-1" in line]
    assert line.split("│")[2].strip() == "3" and line.split("│")[3].strip() == "3"  # comments, scored
    scored = civmon(folder, "score")  # nothing left for `civmon score`: the API scored them once
    assert scored.returncode == 0 and ": 0 comments scored" in scored.stdout, scored.stdout
    assert civmon(folder, "metrics").returncode == 0
    at = open_app(monkeypatch, folder, db_url, "community", {"community": "api/forum-1"})
    assert metric(at, "Comments in period") == "3"
    assert metric(at, "Scored comments") == "3"


def test_serve_refuses_an_uninitialised_store_with_a_hint(tmp_path):
    write_config(tmp_path, "sqlite:///civmon.db")
    result = civmon(tmp_path, "serve", timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "civmon init" in result.stderr


def test_a_failing_store_answers_503_and_logs_why_without_the_comment_or_a_traceback(tmp_path):
    folder = initialised(tmp_path, "sqlite:///civmon.db")
    with running_server(folder, "--no-auth") as running:
        engine = make_engine(f"sqlite:///{folder / 'civmon.db'}")
        refuse_comment_inserts(engine)  # the store fails every write, as a full disk would
        engine.dispose()
        marker = "Qwertzuiop the private comment"
        response = requests.post(running.url + ANALYZE, json=toxicity(marker, communityId="forum"), timeout=60)
        assert response.status_code == 503 and response.json()["error"]["status"] == "UNAVAILABLE"
        assert requests.get(f"{running.url}/healthz", timeout=10).status_code == 200  # and serves on
        log = running.log_text()
    assert "a comment could not be stored: refused" in log  # the driver's first line
    assert "Qwertzuiop" not in log and "Traceback" not in log


def test_a_store_keyed_otherwise_since_the_start_answers_503_and_logs_why(tmp_path):
    """The store's authors re-keyed under a running server (`civmon pseudonymise` with pseudonymisation on, by
    another configuration): its storing requests are refused with the reason in the log, not a bare 500."""
    folder = initialised(tmp_path, "sqlite:///civmon.db")
    with running_server(folder, "--no-auth") as running:
        engine = make_engine(f"sqlite:///{folder / 'civmon.db'}")
        with engine.begin() as connection:
            connection.execute(insert(StoreFact).values(name="author_keying", value="user names"))
        engine.dispose()
        response = requests.post(running.url + ANALYZE, json=toxicity("Thanks.", communityId="forum"), timeout=60)
        scored = requests.post(running.url + ANALYZE, json=toxicity("Thanks."), timeout=60)
        log = running.log_text()
    assert response.status_code == 503 and "log says why" in response.json()["error"]["message"]
    assert scored.status_code == 200  # scoring alone goes on
    assert "a comment could not be stored: this database holds authors as user names" in log
    assert "Traceback" not in log


def test_several_workers_log_their_requests_and_merge_their_metrics(tmp_path):
    folder = initialised(tmp_path, "sqlite:///civmon.db")
    key = create_key(folder, "pair", 1000)
    with running_server(folder, "--workers", "2") as running:
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda _: requests.post(
                        running.url + ANALYZE, params={"key": key}, json=toxicity("Nice one."), timeout=60
                    ),
                    range(24),
                )
            )
        assert {a.status_code for a in answers} == {200}
        metrics = requests.get(f"{running.url}/metrics", timeout=10).text
        log = running.log_text()
    served = [line for line in metrics.splitlines() if line.startswith("civmon_api_requests_total{")]
    assert sum(float(line.split()[-1]) for line in served if "comments:analyze" in line) == 24
    assert log.count("key=pair") == 24 and key not in log


def test_a_locked_store_holds_neither_scoring_nor_health_and_refuses_past_its_backlog(tmp_path):
    folder = initialised(tmp_path, "sqlite:///civmon.db")
    with running_server(folder, "--no-auth") as running:
        lock = sqlite3.connect(folder / "civmon.db", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # as a backup or another writer would hold it
        body = toxicity("Thanks for the help.", communityId="forum")
        with ThreadPoolExecutor(80) as pool:
            storing = [pool.submit(requests.post, running.url + ANALYZE, json=body, timeout=120) for _ in range(80)]
            time.sleep(3)
            start = time.monotonic()
            assert requests.get(f"{running.url}/healthz", timeout=10).status_code == 200
            only_scored = requests.post(running.url + ANALYZE, json=toxicity("Fine.", doNotStore=True), timeout=10)
            assert only_scored.status_code == 200 and time.monotonic() - start < 5
            lock.execute("ROLLBACK")
            answers = [f.result() for f in storing]
        lock.close()
    busy = [a for a in answers if a.status_code == 503]
    assert busy and all(a.headers["Retry-After"] == "5" and "store is busy" in a.text for a in busy)
    assert len(busy) + sum(a.status_code == 200 for a in answers) == 80
    with sqlite3.connect(folder / "civmon.db") as db:
        assert db.execute("SELECT count(*) FROM comments").fetchone()[0] == 80 - len(busy)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server to start and stop")
def test_a_quota_store_gone_away_answers_503_not_500(tmp_path):
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"], cwd=tmp_path)
    try:
        folder = initialised(tmp_path, "sqlite:///civmon.db", f'[api]\nquota_storage = "redis://127.0.0.1:{port}"\n')
        key = create_key(folder, "bot", 1000)
        with running_server(folder) as running:
            assert analyze_with(running, key).status_code == 200
            redis.terminate()
            redis.wait(timeout=10)
            refused = analyze_with(running, key)
            log = running.log_text()
    finally:
        redis.kill()
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert "quota storage redis://127.0.0.1" in log and "Traceback" not in log


def analyze_with(server: Server, key: str) -> requests.Response:
    return requests.post(server.url + ANALYZE, params={"key": key}, json=toxicity("Nice."), timeout=60)
