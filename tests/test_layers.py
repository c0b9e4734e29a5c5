"""The data flows one way: each stage imports only what lies to its left (plus config and store)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "monitor"
# What each stage may import from monitor. The foundation modules import none of the stages.
FOUNDATION = {"config", "errors", "privacy", "records", "logs", "stopping", "locking", "addresses"}
ALLOWED = {
    "store": FOUNDATION | {"store"},
    "sources": FOUNDATION | {"store", "sources"},
    "scoring": FOUNDATION | {"store", "sources", "scoring"},
    "metrics": FOUNDATION | {"store", "sources", "scoring", "metrics"},
    "backfill": FOUNDATION | {"store", "sources", "scoring", "backfill"},  # a door beside the CLI
}
# Doors beside the CLI: what the command line (and its benchmarks) opens, nothing else imports.
DOORS = {"api", "backfill"}


def monitor_imports(path: Path) -> set[str]:
    """The top-level monitor modules a file imports (`monitor.store.db` -> `store`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found |= {n.split(".")[1] for n in names if n.startswith("monitor.")}
    return found


@pytest.mark.parametrize("stage", sorted(ALLOWED))
def test_stage_imports_only_what_lies_to_its_left(stage: str) -> None:
    wrong = {
        str(path.relative_to(PACKAGE)): sorted(monitor_imports(path) - ALLOWED[stage])
        for path in (PACKAGE / stage).rglob("*.py")
    }
    assert {file: names for file, names in wrong.items() if names} == {}


def test_foundation_imports_no_stage() -> None:
    for name in FOUNDATION:
        assert monitor_imports(PACKAGE / f"{name}.py") <= FOUNDATION, name


def test_doors_are_opened_only_by_the_command_line() -> None:
    openers = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in DOORS and monitor_imports(path) & DOORS
    }
    assert openers <= {"cli.py", "bench/backfill.py"}
