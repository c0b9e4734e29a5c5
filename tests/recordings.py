"""The recorded Reddit API traffic in ../shared/data, read independently of monitor.replay,
so tests can compare what civmon stored with what the recordings hold."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import shared_data

PRAW_CASSETTES = shared_data() / "praw-cassettes" / "cassettes"
PRAWCORE_CASSETTES = shared_data() / "prawcore-cassettes" / "cassettes"
LARGE_THREAD = "TestCommentForest.test_replace__all_large"  # n49rw: 1,428 comments, 235 "more" markers


def require_cassettes() -> list[Path]:
    """Both cassette folders, or a clean skip where the shared data is absent."""
    dirs = [PRAW_CASSETTES, PRAWCORE_CASSETTES]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        pytest.skip(f"recorded Reddit traffic not available: {', '.join(missing)}")
    return dirs


def things(node: Any, kind: str) -> Iterator[dict[str, Any]]:
    """Every Reddit object of `kind` (t1 comment, t3 submission) anywhere in a JSON answer."""
    if isinstance(node, dict):
        if node.get("kind") == kind and isinstance(node.get("data"), dict):
            yield node["data"]
        for value in node.values():
            yield from things(value, kind)
    elif isinstance(node, list):
        for value in node:
            yield from things(value, kind)


def responses(cassette: str) -> Iterator[Any]:
    """The parsed JSON answers of one cassette (token answers and non-JSON bodies left out)."""
    for interaction in json.loads((PRAW_CASSETTES / f"{cassette}.json").read_text())["interactions"]:
        if "access_token" in interaction["request"]["uri"]:
            continue
        try:
            yield json.loads(interaction["response"]["body"]["string"])
        except (json.JSONDecodeError, TypeError, KeyError):
            continue


def recorded(kind: str, cassettes: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """id -> object for every `kind` object in the given cassettes (default: all), without nested replies."""
    names = cassettes or sorted(p.stem for p in PRAW_CASSETTES.glob("*.json"))
    found: dict[str, dict[str, Any]] = {}
    for name in names:
        for body in responses(name):
            for item in things(body, kind):
                found[item["id"]] = {k: v for k, v in item.items() if k != "replies"}
    return found
