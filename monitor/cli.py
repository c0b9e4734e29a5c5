"""The `civmon` command: a thin door to each stage. Parses arguments, calls one
function, prints a summary; a CivmonError becomes a clear message and exit code 2."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from monitor.config import Settings, load_settings, resolve_path
from monitor.errors import CivmonError
from monitor.privacy import ensure_key_file, key_problem, load_pseudonymiser
from monitor.sources.base import CommunityRef
from monitor.sources.reddit_credentials import HOW_TO, credentials_problem
from monitor.store import schema
from monitor.store.db import check_connection, display_url, make_engine, transaction
from monitor.store.status import community_status
from monitor.store.upsert import Writer

app = typer.Typer(help="civmon: a self-hosted civility monitor for online communities.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
out = Console(soft_wrap=True, highlight=False)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML file (default: $CIVMON_CONFIG, else ./civmon.toml if present)."),
]


@app.command()
def init(config: ConfigOption = None) -> None:
    """Create or migrate the database, the pseudonymisation key and the configured communities."""
    settings = load_settings(config)
    engine = make_engine(settings.database.url)
    check_connection(engine)
    before, after = schema.upgrade(engine)
    migrated = "already current" if before == after else f"migrated {before or 'empty'} → {after}"
    out.print(f"database {display_url(engine.url)}: schema {after} ({migrated})")
    if ensure_key_file(settings.privacy):
        out.print(f"created pseudonymisation key {settings.privacy.key_file} (keep it, and keep it private)")
    with transaction(engine) as session:
        writer = Writer(session, settings.privacy, load_pseudonymiser(settings.privacy))
        for community in settings.communities:
            writer.community_id(CommunityRef(community.platform, community.name))
    out.print(f"{len(settings.communities)} communities configured. Next: `civmon status`.")


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the configuration and the environment it needs; print every problem."""
    settings = load_settings(config)
    problems = _environment_problems(settings)
    source = resolve_path(config) or "built-in defaults"
    if problems:
        for problem in problems:
            out.print(f"[red]✗[/red] {escape(problem)}")
        raise typer.Exit(1)
    out.print(
        f"[green]✓[/green] {escape(str(source))}: valid; {len(settings.communities)} communities; "
        f"database {escape(display_url(settings.database.url))} reachable"
    )


def _environment_problems(settings: Settings) -> list[str]:
    problems = []
    try:
        check_connection(make_engine(settings.database.url))
    except CivmonError as exc:
        problems.append(f"database.url: {exc}")
    if any(c.platform == "reddit" for c in settings.communities):
        if reason := credentials_problem(settings.reddit):
            problems.append(f"reddit: {reason}\n  → {HOW_TO.format(site=settings.reddit.site)}")
    if reason := key_problem(settings.privacy):
        problems.append(f"privacy.key_file: {reason}\n  → run `civmon init`, or set CIVMON_PSEUDONYM_KEY")
    return problems


@app.command()
def status(config: ConfigOption = None) -> None:
    """Per community: comments stored and scored, the last collection and its outcome."""
    settings = load_settings(config)
    engine = schema.open_store(settings.database.url, readonly=True)
    with transaction(engine) as session:
        rows = community_status(session)
    if not rows:
        out.print("No communities yet: add [[communities]] to the configuration, then `civmon init`.", markup=False)
        return
    table = Table(title=f"civmon status — {display_url(engine.url)}")
    for column in ("community", "comments", "scored", "last collection (UTC)", "outcome"):
        table.add_column(column, justify="right" if column in ("comments", "scored") else "left")
    for row in rows:
        when = datetime.fromtimestamp(row.last_run_started_utc, UTC).strftime("%Y-%m-%d %H:%M") if row.last_run_started_utc else "never"
        outcome = (row.last_run_status or "—") + (f": {row.last_run_error}" if row.last_run_error else "")
        table.add_row(f"{row.platform}/{row.name}", f"{row.comments:,}", f"{row.scored:,}", when, outcome)
    out.print(table)


@bench_app.command("upsert")
def bench_upsert(
    comments: Annotated[int, typer.Option(help="Comments per pass.")] = 100_000,
    batch: Annotated[int, typer.Option(help="Comments per transaction.")] = 5_000,
    postgres_url: Annotated[
        str | None, typer.Option(help="PostgreSQL server to also measure (a scratch database is created and dropped).")
    ] = None,
) -> None:
    """Bulk-upsert throughput on SQLite (and PostgreSQL): insert, idempotent re-collection, edits."""
    from monitor.bench.upsert import bench_databases, report, run_passes

    with bench_databases(postgres_url) as urls:
        for url in urls:
            out.print(report(url, comments, run_passes(url, comments, batch)), markup=False)


def main() -> None:
    try:
        app(standalone_mode=True)
    except CivmonError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(2)
