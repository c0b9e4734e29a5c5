"""Configuration: every kind of bad file gets a message naming the field and what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_settings
from monitor.errors import CivmonError
from monitor.store.db import display_url

from conftest import PROJECT


def write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "civmon.toml"
    path.write_text(content, encoding="utf-8")
    return path


def problems(tmp_path: Path, content: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, content))
    return {p.path: f"{p.message} | {p.hint}" for p in caught.value.problems}


def test_example_config_is_valid():
    settings = load_settings(PROJECT / "config" / "civmon.example.toml")
    assert [c.key for c in settings.communities] == ["reddit/AskHistorians", "reddit/changemyview", "hackernews/top"]
    assert settings.communities[1].interval_minutes == 30


def test_no_file_means_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CIVMON_CONFIG", raising=False)
    settings = load_settings()
    assert settings.database.url == "sqlite:///civmon.db" and settings.communities == []


def test_malformed_toml_names_the_line(tmp_path):
    found = problems(tmp_path, '[database]\nurl = "sqlite:///x.db"\n[[communities]\nplatform = "reddit"\n')
    assert "not valid TOML" in found["(file)"] and "line 3" in found["(file)"]


def test_wrong_type_names_the_field(tmp_path):
    found = problems(
        tmp_path,
        '[collector]\ninterval_minutes = "often"\nsubmissions_per_run = "many"\n'
        '[privacy]\nkeep_bodies = "yes please"\n',
    )
    assert "write a number" in found["collector.interval_minutes"]
    assert "whole number" in found["collector.submissions_per_run"]
    assert "true or false" in found["privacy.keep_bodies"]


def test_unknown_platform_and_bad_names(tmp_path):
    found = problems(
        tmp_path,
        """
[[communities]]
platform = "reddit"
name = "ok_name"
[[communities]]
platform = "myspace"
name = "friends"
[[communities]]
platform = "reddit"
name = "r/politics"
[[communities]]
platform = "hackernews"
name = "frontpage"
timezone = "Mars/Olympus"
""",
    )
    assert "'reddit' or 'hackernews'" in found["communities[1].platform"]
    assert "without 'r/'" in found["communities[2]"]
    assert "Olympus" in found["communities[3].timezone"]
    assert "communities[0]" not in found


def test_misspelt_setting_is_an_error(tmp_path):
    found = problems(tmp_path, "[collector]\nintervall_minutes = 5\n")
    assert "unknown setting" in found["collector.intervall_minutes"]


def test_bad_database_url(tmp_path):
    found = problems(tmp_path, '[database]\nurl = "mysql://root@localhost/x"\n')
    assert "only sqlite" in found["database.url"]


def test_every_problem_is_reported_at_once(tmp_path):
    found = problems(tmp_path, '[collector]\ninterval_minutes = 0\nrequest_budget = -1\n[model]\ndevice = "tpu"\n')
    assert set(found) == {"collector.interval_minutes", "collector.request_budget", "model.device"}


def test_a_claim_batch_beyond_one_statement_is_refused(tmp_path):
    # A claim is one INSERT of 6 parameters a comment: 20,000 would pass PostgreSQL's 65,535 and crash every worker.
    found = problems(tmp_path, "[scoring]\nclaim_batch = 20000\n")
    assert set(found) == {"scoring.claim_batch"}
    assert "10000" in found["scoring.claim_batch"].replace(",", "")


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CIVMON_DATABASE__URL", "postgresql://u:secret@db/civmon")
    settings = load_settings(write(tmp_path, '[database]\nurl = "sqlite:///file.db"\n'))
    assert settings.database.url == "postgresql://u:secret@db/civmon"


def test_missing_file_says_how_to_start(tmp_path):
    with pytest.raises(CivmonError, match="does not exist") as caught:
        load_settings(tmp_path / "nope.toml")
    assert "civmon.example.toml" in caught.value.hint


def test_non_utf8_file(tmp_path):
    path = tmp_path / "civmon.toml"
    path.write_bytes(b'[reddit]\nuser_agent = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="UTF-8"):
        load_settings(path)


@pytest.mark.parametrize(
    "url",
    [
        "notaurl",
        "ftp://x/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://",
        "https:///services/T/B/secret",
        "//hooks.example/services/T/B/secret",
        "https://h:99999/services/T/B/secret",
        " https://hooks.example/services/T/B/secret",
        "https://hooks.example/services/T/B/secret\nX-Injected: 1",
        "http://" + "a" * 70 + ".example/services/T/B/secret",
        "http://a..example/services/T/B/secret",
    ],
)
def test_a_webhook_must_be_an_http_url_and_the_error_never_repeats_it(tmp_path, monkeypatch, url):
    monkeypatch.setenv("CIVMON_ALERTS__WEBHOOK_URL", url)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    [problem] = caught.value.problems
    assert problem.path == "alerts.webhook_url" and "give an http(s) URL" in problem.message
    assert url not in str(caught.value)


def test_an_https_webhook_is_kept_secret(monkeypatch):
    monkeypatch.setenv("CIVMON_ALERTS__WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/secret")
    settings = load_settings()
    assert settings.alerts.webhook_url.get_secret_value().endswith("/secret") and "secret" not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CIVMON_DATABASE", "garbage"),
        ("CIVMON_COMMUNITIES", "notjson"),
        ("CIVMON_COMMUNITIES", "[{"),
        ("CIVMON_ALERTS", "yes"),
        ("CIVMON_PRIVACY", '{"key_file": '),
    ],
)
def test_a_section_variable_that_is_not_json_names_itself(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    [problem] = caught.value.problems
    assert problem.path == variable and problem.message == "not valid JSON" and f"{variable}='" in problem.hint


def test_a_folder_given_as_the_configuration_is_a_clear_error(tmp_path):
    with pytest.raises(CivmonError, match="cannot read the configuration file .*: Is a directory"):
        load_settings(tmp_path)


@pytest.mark.parametrize(
    "name", ["[/oops]", "we'ird; sub\"name", "a" * 500, "ünïcode", "x", "two words", "r/politics", "news\n"]
)
def test_a_configured_subreddit_follows_reddits_rules(tmp_path, name):
    found = problems(tmp_path, f'[[communities]]\nplatform = "reddit"\nname = {json.dumps(name)}\n')
    [(path, message)] = found.items()
    assert path.startswith("communities[0]") and ("3-21 letters" in message or "at most 64" in message), message


@pytest.mark.parametrize("name", ["AskHistorians", "de", "u_spez", "changemyview", "Ask_Science_2"])
def test_names_reddit_allows_are_accepted(tmp_path, name):
    settings = load_settings(write(tmp_path, f'[[communities]]\nplatform = "reddit"\nname = "{name}"\n'))
    assert settings.communities[0].name == name


@pytest.mark.parametrize(
    ("section", "setting", "value"),
    [
        ("schedule", "score_minutes", "99999999999999999999"),  # OverflowError in the scheduler
        ("schedule", "metrics_minutes", "inf"),
        ("collector", "interval_minutes", "nan"),
        ("collector", "request_timeout_seconds", "1e300"),
        ("alerts", "cooldown_hours", "inf"),  # alerts silenced for good
        ("alerts", "threshold_mads", "inf"),  # no spike could ever fire
        ("privacy", "retention_days", "10000000000000000000000"),
    ],
)
def test_values_no_schedule_could_hold_are_refused(tmp_path, section, setting, value):
    found = problems(tmp_path, f"[{section}]\n{setting} = {value}\n")
    assert list(found) == [f"{section}.{setting}"], found


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://civmon:p@ss@db.example/civmon", "must be written %40"),
        ("garbage hunter2", "not a database URL"),
        ("postgresql://civmon:Xy7@k:hunter2@127.0.0.1:5432/civmon", "%40 or %3A"),  # a port read from the password
        ("postgresql+psycopg2://civmon:hunter2@127.0.0.1/civmon", "civmon installs no driver 'postgresql+psycopg2'"),
        ("postgresql+asyncpg://civmon:hunter2@127.0.0.1/civmon", "use sqlite:/// or postgresql:// (psycopg 3)"),
        *((memory, "an in-memory SQLite store keeps nothing") for memory in ("sqlite://", "sqlite:///:memory:")),
    ],
)
def test_a_database_url_that_cannot_be_right_is_refused_without_its_password(tmp_path, url, says):
    found = problems(tmp_path, f'[database]\nurl = "{url}"\n')
    assert says in found["database.url"] and "ss@" not in found["database.url"] and "hunter2" not in str(found)


@pytest.mark.parametrize(
    ("storage", "says"),
    [
        ("redis://:hunter2@127.0.0.1:notaport/0", "port from 0 to 65535"),
        ("bogus://hunter2@x", "use memory://"),
    ],
)
def test_a_quota_storage_that_cannot_be_right_is_refused_without_its_password(tmp_path, storage, says):
    found = problems(tmp_path, f'[api]\nquota_storage = "{storage}"\n')
    assert says in found["api.quota_storage"] and "hunter2" not in str(found)


def test_a_printed_database_url_hides_the_password_wherever_it_is_given():
    assert (
        display_url("postgresql://u@127.0.0.1:1/db?password=QSECRET&sslmode=require") == "postgresql://u@127.0.0.1:1/db"
    )
    assert display_url("postgresql://u:hunter2@127.0.0.1/db") == "postgresql://u:***@127.0.0.1/db"


@pytest.mark.parametrize("second", ["Announcements", "announcements"])
def test_a_community_listed_twice_in_any_case_is_refused(tmp_path, second):
    """The store finds names regardless of case: both entries would collect into one community, twice a pass."""
    community = '[[communities]]\nplatform = "reddit"\nname = "{}"\n'
    found = problems(tmp_path, community.format("announcements") + community.format(second))
    assert "communities listed twice (names match regardless of case)" in str(found), found
    assert "reddit/announcements" in str(found)


@pytest.mark.parametrize("agent", ["", "   ", "civmon\nX-Injected: 1"])
def test_a_blank_or_multi_line_user_agent_is_refused(tmp_path, agent):
    """Refused by the HTTP library at the first request, after the configuration was called valid."""
    found = problems(tmp_path, f"[reddit]\nuser_agent = {json.dumps(agent)}\n")
    assert list(found) == ["reddit.user_agent"], found


def test_a_variable_with_one_underscore_between_section_and_key_is_refused_not_ignored(tmp_path, monkeypatch):
    """CIVMON_DATABASE_URL was ignored: the store stayed ./civmon.db, with config check's approval."""
    monkeypatch.setenv("CIVMON_DATABASE_URL", "postgresql://civmon@db.example/civmon")
    found = problems(tmp_path, "")
    assert found == {
        "CIVMON_DATABASE_URL": "not a setting: a section and its key are joined by two underscores "
        "| rename it CIVMON_DATABASE__URL"
    }


def test_a_bad_value_from_the_environment_names_its_variable_not_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CIVMON_COLLECTOR__INTERVAL_MINUTES", "abc")
    found = problems(tmp_path, "[collector]\ninterval_minutes = 5\n")
    [(path, said)] = found.items()
    assert path == "collector.interval_minutes"
    assert "(set by CIVMON_COLLECTOR__INTERVAL_MINUTES, which the file gives way to)" in said
