"""The `civmon` command: a thin door to each stage. Parses arguments, calls one
function, prints a summary; a CivmonError becomes a clear message and exit code 2."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from monitor.config import Settings, load_settings, resolve_path
from monitor.errors import CivmonError
from monitor.privacy import ensure_key_file, key_problem
from monitor.sources.base import CommunityRef
from monitor.sources.reddit_credentials import HOW_TO, credentials_problem
from monitor.store import schema
from monitor.store.db import check_connection, display_url, make_engine, transaction
from monitor.store.status import community_status
from monitor.store.upsert import ensure_community

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
    for community in settings.communities:
        ensure_community(engine, CommunityRef(community.platform, community.name))
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
        when = (
            datetime.fromtimestamp(row.last_run_started_utc, UTC).strftime("%Y-%m-%d %H:%M")
            if row.last_run_started_utc
            else "never"
        )
        outcome = (row.last_run_status or "—") + (f": {row.last_run_error}" if row.last_run_error else "")
        table.add_row(f"{row.platform}/{row.name}", f"{row.comments:,}", f"{row.scored:,}", when, outcome)
    out.print(table)


@app.command()
def collect(
    config: ConfigOption = None,
    community: Annotated[str | None, typer.Option(help="Collect only this community (name or platform/name).")] = None,
) -> None:
    """One collection pass over the configured communities, with a summary per community."""
    from monitor.sources.collect import collect as collect_pass

    settings = load_settings(config)
    engine = schema.open_store(settings.database.url)
    outcomes = collect_pass(settings, engine, community)
    table = Table(title="collection")
    for column in ("community", "outcome", "new", "updated", "deleted", "requests"):
        table.add_column(column, justify="left" if column in ("community", "outcome") else "right", no_wrap=True)
    for o in outcomes:
        c = o.counts
        table.add_row(o.community, o.status.value, f"{c.new:,}", f"{c.updated:,}", f"{c.deleted:,}", f"{c.requests:,}")
    out.print(table)
    for o in outcomes:
        for problem in filter(None, [o.failure, *o.counts.errors]):
            out.print(f"{o.community}: {problem}", markup=False)
    if outcomes and all(o.status == "failed" for o in outcomes):
        raise typer.Exit(1)


@app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="Reddit NDJSON dumps (Pushshift / Arctic Shift), plain or .zst.")],
    config: ConfigOption = None,
) -> None:
    """Import Reddit dump files into the store; bad lines are reported with their numbers and skipped."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from monitor.sources.collect import import_dumps

    settings = load_settings(config)
    engine = schema.open_store(settings.database.url)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[counts]}"),
    )
    with Progress(*columns, console=out) as progress:
        tasks = {
            f: progress.add_task(f.name, total=f.stat().st_size if f.is_file() else None, counts="") for f in files
        }

        def advance(path: Path, position: int, report: Any) -> None:
            rate = report.lines / max(progress.tasks[tasks[path]].elapsed or 1e-9, 1e-9)
            progress.update(
                tasks[path],
                completed=position,
                counts=(
                    f"{report.lines:,} lines ({rate:,.0f}/s), {report.comments:,} comments, "
                    f"{report.threads:,} submissions, {len(report.bad):,} bad"
                ),
            )

        reports = import_dumps(settings, engine, files, advance)
    for path, report in reports.items():
        out.print(
            f"{path}: {report.lines:,} lines, {report.comments:,} comments, {report.threads:,} submissions, "
            f"{len(report.bad):,} bad lines",
            markup=False,
        )
        for bad in report.bad[:10]:
            out.print(f"  line {bad.number}: {bad.reason}", markup=False)
        if len(report.bad) > 10:
            out.print(
                f"  ... and {len(report.bad) - 10} more (all listed in the run log: `civmon status`)", markup=False
            )


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


@bench_app.command("import")
def bench_import(
    lines: Annotated[int, typer.Option(help="Lines in the smaller file (the larger has 4x).")] = 50_000,
) -> None:
    """Dump import: lines per second and peak memory at two file sizes."""
    from monitor.bench.dumps import report

    out.print(report(lines), markup=False)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        app(standalone_mode=True)
    except CivmonError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(2)
