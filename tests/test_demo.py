"""`civmon demo`: the first-run experience, offline, on recorded traffic; and its advice when it has nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from monitor.demo import plan
from monitor.errors import CivmonError

from recordings import PRAW_CASSETTES, require_cassettes


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("praw_", "CIVMON_"))} | {"COLUMNS": "200"}


def test_offline_without_recordings_says_what_to_pass(monkeypatch):
    monkeypatch.delenv("praw_client_id", raising=False)
    monkeypatch.delenv("praw_client_secret", raising=False)
    with pytest.raises(CivmonError, match="no internet, no Reddit credentials") as caught:
        plan(None, has_internet=lambda: False)
    assert "--replay" in caught.value.hint
    with pytest.raises(CivmonError, match="holds no recorded traffic"):
        plan(PRAW_CASSETTES.parent.parent / "goemotions", has_internet=lambda: False)  # JSON, but no cassettes


def test_demo_runs_the_pipeline_on_recorded_traffic(tmp_path):
    require_cassettes()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "demo",
            "--replay",
            str(PRAW_CASSETTES.parent),
            "--cycles",
            "2",
            "--no-dashboard",
        ],
        cwd=tmp_path,
        # a deployment's store named in the environment: the demo's data must not go into it
        env=clean_env() | {"CIVMON_DATABASE__URL": f"sqlite:///{tmp_path / 'deployment.db'}"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    assert "watching: recorded reddit.com traffic" in result.stdout
    assert "cycle 1/2: collected reddit/askreddit +100, reddit/announcements +1428, reddit/funny +541" in result.stdout
    assert "cycle 2/2: collected reddit/askreddit +0" in result.stdout
    assert (tmp_path / "civmon-demo.db").exists() and (tmp_path / "civmon-demo.toml").exists()
    assert not (tmp_path / "deployment.db").exists() and "the data is in civmon-demo.db" in result.stdout
    status = subprocess.run(
        [sys.executable, "-m", "monitor", "status", "--config", "civmon-demo.toml"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert status.returncode == 0, status.stderr
    assert "reddit/announcements" in status.stdout and "1,428" in status.stdout


def test_a_number_of_cycles_below_one_is_refused(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "demo", "--cycles", "-1", "--no-dashboard"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "--cycles" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
