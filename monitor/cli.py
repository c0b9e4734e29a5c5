"""The `civmon` command: a thin door to each stage. Parses arguments, calls one
function, prints a summary; a CivmonError becomes a clear message and exit code 2."""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from monitor.addresses import http_url, is_loopback, require_free_address
from monitor.config import ModelSettings, Settings, load_settings, require_shared_database, resolve_path
from monitor.errors import CivmonError
from monitor.privacy import ensure_key_file, key_problem, load_pseudonymiser
from monitor.records import CommunityRef
from monitor.sources.reddit_credentials import HOW_TO, credentials_problem
from monitor.store import schema
from monitor.store.authorship import check_keying, describe, keying_problem, pseudonymise_stored, stored_keying
from monitor.store.db import check_connection, display_url, make_engine, transaction
from monitor.store.status import community_status, job_status
from monitor.store.upsert import ensure_community

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from monitor.scoring.evaluate import Row

app = typer.Typer(help="civmon: a self-hosted civility monitor for online communities.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
keys_app = typer.Typer(
    help="API keys for `civmon serve` (stored hashed; a secret is shown once).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)  # errors, and what must keep out of streamed results
REASONS_SHOWN = 4  # score --input: the commonest reasons rows were not scored
if not out.is_terminal and "COLUMNS" not in os.environ:
    # written to a file or pipe (cron, CI), rich would fit tables into 80 columns and fold eval's
    # model names a letter a line; a log has no width to fit
    out.width = 200


@contextmanager
def _progress(what: str, console: Console = out, every_s: float = 0.0) -> Iterator[Callable[[str], None]]:
    """Where a long job reports its steps: a spinner on `console` where it is a terminal; else (cron, nohup, a
    pipe), where a spinner shows nothing, a timed line on stderr, which keeps stdout for results, at most one
    every `every_s` seconds (the first always)."""
    if console.is_terminal:
        with console.status(what) as status:
            yield status.update
        return
    last = -math.inf

    def line(message: str) -> None:
        err.print(f"{datetime.now(UTC):%H:%M:%S} {message}", markup=False)

    def throttled(message: str) -> None:
        nonlocal last
        if time.monotonic() - last >= every_s:
            last = time.monotonic()
            line(message)

    line(what)
    yield throttled


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
    # a weak or unreadable key is refused now, not at the first collection; so is one the store's authors disagree with
    check_keying(engine, load_pseudonymiser(settings.privacy))
    for community in settings.communities:
        ensure_community(engine, CommunityRef(community.platform, community.name))
    out.print(f"{len(settings.communities)} communities configured. Next: `civmon status`.")


@config_app.command("check")
def config_check(
    file: Annotated[Path | None, typer.Argument(help="The TOML file to check (or --config).")] = None,
    config: ConfigOption = None,
) -> None:
    """Validate the configuration and the environment it needs; print every problem."""
    if file is not None and config is not None and file != config:
        raise CivmonError(f"two files to check: {file} and --config {config}", "name one of them")
    config = file or config
    settings = load_settings(config)
    database, problems = _environment_problems(settings)
    source = resolve_path(config) or "built-in defaults"
    if problems:
        for problem in problems:
            out.print(f"[red]✗[/red] {escape(problem)}")
        raise typer.Exit(1)
    out.print(
        f"[green]✓[/green] {escape(str(source))}: valid; {len(settings.communities)} communities; "
        f"database {escape(display_url(settings.database.url))} {escape(database)}"
    )


def _environment_problems(settings: Settings) -> tuple[str, list[str]]:
    """What state the database is in, and every problem, found without changing anything."""
    problems = []
    database, engine = "", None
    try:
        database, engine = schema.store_state(settings.database.url)
    except CivmonError as exc:
        problems.append(f"database.url: {exc}")
    if any(c.platform == "reddit" for c in settings.communities):
        if reason := credentials_problem(settings.reddit):
            problems.append(f"reddit: {reason}\n  → {HOW_TO.format(site=settings.reddit.site)}")
    if reason := key_problem(settings.privacy):
        problems.append(f"privacy.key_file: {reason}")
    elif engine is not None and (mismatch := keying_problem(engine, load_pseudonymiser(settings.privacy))):
        problems.append(f"privacy: {mismatch}")
    if settings.model.name != ModelSettings().name:
        from monitor.scoring.models import local_model_problem  # the scoring stack: only for a model of one's own

        if reason := local_model_problem(settings.model.name):
            problems.append(f"model.name: {reason}\n  → check the path, or train one: `civmon train --out FOLDER`")
    if settings.scoring.workers > 1:
        try:
            require_shared_database(settings, f"[scoring] workers = {settings.scoring.workers}")
        except CivmonError as exc:
            problems.append(f"scoring.workers: {exc}")
    return database, problems


@app.command()
def pseudonymise(config: ConfigOption = None) -> None:
    """Replace the authors stored as user names (while pseudonymisation was off) with pseudonyms under the key.

    Stop `civmon run` and `civmon serve` first. It runs in one transaction: interrupted, it changed nothing.
    It cannot be undone, and pseudonyms cannot be re-keyed: keep the key.
    """
    settings = load_settings(config)
    pseudonymiser = load_pseudonymiser(settings.privacy)
    engine = schema.open_store(settings.database.url)
    with _progress("reading the stored authors...") as emit:
        converted = pseudonymise_stored(engine, pseudonymiser, emit)
    if converted.already:
        out.print("the stored authors are pseudonyms under this key already: nothing to do")
    else:
        out.print(f"{converted.authors:,} authors' user names replaced with pseudonyms; collection can resume")


@app.command()
def status(config: ConfigOption = None) -> None:
    """Per community: comments stored and scored, the last collection and its outcome."""
    settings = load_settings(config)
    engine = schema.open_store(settings.database.url, readonly=True)
    with transaction(engine) as session:
        rows = community_status(session)
        jobs = job_status(session)
        backlog = _backlog(session)
        keying = stored_keying(session)
    if not rows:
        out.print("No communities yet: add [[communities]] to the configuration, then `civmon init`.", markup=False)
        return
    table = Table(title=Text(f"civmon status — {display_url(engine.url)}"))
    for column in ("community", "comments", "scored", "last collection (UTC)", "outcome"):
        table.add_column(column, justify="right" if column in ("comments", "scored") else "left")
    for row in rows:
        # a community fed by `civmon serve` has no collector; "never" would read as one that failed to start
        when = (
            "— (fed by the API)"
            if row.platform == "api" and not row.last_run_started_utc
            else _utc(row.last_run_started_utc)
        )
        outcome = (row.last_run_status or "—") + (f": {row.last_run_error}" if row.last_run_error else "")
        _add_text_row(table, f"{row.platform}/{row.name}", f"{row.comments:,}", f"{row.scored:,}", when, outcome)
    out.print(table)
    # a researcher citing the store can say how its authors were keyed (the check value names the key, not reveals it)
    out.print(f"authors: {describe(keying)}", markup=False)
    if jobs:
        _print_jobs(jobs, backlog)


def _add_text_row(table: Table, *cells: str) -> None:
    """A row of plain text: names and errors come from dumps and platforms, and rich would read `[/x]` as markup."""
    table.add_row(*map(Text, cells))


def _utc(epoch: int | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S") if epoch else "never"


def _backlog(session: Any) -> tuple[str, int] | None:
    """(model version, comments it has not scored yet), following the model in use (a scorer last started with it)."""
    from monitor.metrics.job import current_version
    from monitor.scoring.pending import count_pending

    version = current_version(session)
    return (version, count_pending(session, version)) if version else None


def _print_jobs(jobs: list[Any], backlog: tuple[str, int] | None) -> None:
    now = int(datetime.now(UTC).timestamp())
    table = Table(title="jobs")
    for column in ("job", "last start (UTC)", "last success (UTC)", "lag", "last outcome"):
        table.add_column(column)
    for job in jobs:
        lag = f"{(now - job.last_success_utc) / 60:,.0f} min" if job.last_success_utc else "—"
        outcome = job.last_status.value + (f": {job.last_error}" if job.last_error else "")
        _add_text_row(table, job.job, _utc(job.last_start_utc), _utc(job.last_success_utc), lag, outcome)
    out.print(table)
    if backlog:
        out.print(f"scoring backlog: {backlog[1]:,} comments not yet scored by {backlog[0]}", markup=False)


@app.command()
def run(
    config: ConfigOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="Run every job once, in pipeline order, then exit (1 if any failed).")
    ] = False,
    json_logs: Annotated[bool, typer.Option("--json-logs", help="Log one JSON object per line.")] = False,
) -> None:
    """The monitor: collect, score, roll up and alert on schedule until SIGTERM/SIGINT."""
    from monitor import logs, schedule

    logs.configure(json_lines=json_logs)
    settings = load_settings(config)
    if settings.scoring.workers > 1:
        require_shared_database(settings, f"[scoring] workers = {settings.scoring.workers}")
    engine = schema.open_store(settings.database.url)
    if settings.communities:  # collectors write authors (a scoring-only monitor needs no key)
        check_keying(engine, load_pseudonymiser(settings.privacy))
    path = str(resolve_path(config)) if resolve_path(config) else None
    if once:
        if failed := schedule.run_once(settings, path, engine):
            out.print(f"failed: {', '.join(failed)}; the log above and `civmon status` say why", markup=False)
            raise typer.Exit(1)
        out.print("every job ran once; `civmon status` shows the outcomes", markup=False)
    else:
        schedule.run_forever(settings, path, engine)


@app.command()
def demo(
    replay: Annotated[Path | None, typer.Option(help="Recorded reddit.com traffic to replay when offline.")] = None,
    cycles: Annotated[int, typer.Option(min=1, max=100, help="Collect -> score -> roll up this many times.")] = 2,
    dashboard_after: Annotated[
        bool, typer.Option("--dashboard/--no-dashboard", help="Then start the dashboard.")
    ] = True,
    port: Annotated[int, typer.Option(min=1, max=65535, help="The dashboard's port.")] = 8501,
) -> None:
    """First run: the real pipeline on embedded defaults (SQLite here, the built-in model), then the dashboard."""
    from monitor.demo import DEMO_STORE, run_demo

    config = run_demo(replay, cycles, lambda line: out.print(line, markup=False))
    out.print(f"done. Configuration written to {config}; the data is in {DEMO_STORE}.", markup=False)
    out.print(f"  per community: `civmon status --config {config}`", markup=False)
    out.print(f"  keep it running: `civmon run --config {config}`", markup=False)
    if dashboard_after:
        _serve_dashboard(config, port, "127.0.0.1")
    else:
        out.print(f"  the dashboard: `civmon dashboard --config {config}`", markup=False)


HostOption = Annotated[
    str,
    typer.Option(help="Address to listen on. The dashboard has no login: expose it only behind a proxy with auth."),
]


@app.command()
def dashboard(
    config: ConfigOption = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8501,
    host: HostOption = "127.0.0.1",
) -> None:
    """Serve the Streamlit dashboard (reads the store; writes only alert acknowledgements)."""
    _serve_dashboard(resolve_path(config), port, host)


def _serve_dashboard(config: Path | None, port: int, host: str) -> None:
    app_file = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
    if not app_file.exists():
        raise CivmonError(f"the dashboard is not at {app_file}", "run civmon from a clone of the repository")
    require_free_address(host, port)
    if not is_loopback(host):
        # Anyone who reaches the port reads every community and can acknowledge alerts.
        out.print(
            f"[yellow]warning:[/yellow] listening on {escape(host)}, beyond this machine, with no login: put it "
            "behind a reverse proxy that authenticates (README: Dashboard), or keep --host 127.0.0.1"
        )
    env = {**os.environ, **({"CIVMON_CONFIG": str(config.resolve())} if config else {})}
    out.print(f"dashboard: {http_url(host, port)}  (Ctrl-C stops it)", markup=False)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_file),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    # Streamlit takes this process's place, so SIGTERM and Ctrl-C reach the server itself.
    os.execve(sys.executable, command, env)


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on; behind a TLS proxy, keep 127.0.0.1.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes, each with its own model.")] = 1,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Take requests without a key (loopback only).")] = False,
) -> None:
    """Serve the scoring API: Perspective's comments:analyze, civmon's /v1/score, /healthz and /metrics."""
    from monitor.api import server

    path = resolve_path(config)
    server.prepare(load_settings(path), path, host, port, workers, auth=not no_auth)
    err.print(f"scoring API: {http_url(host, port)}  (docs at /docs; Ctrl-C stops it)", markup=False)
    server.run(host, port, workers)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for (a tool, a team): named in logs and quotas.")],
    qps: Annotated[float | None, typer.Option(help="Requests per second (default: \\[api] default_qps).")] = None,
    community: Annotated[
        list[str] | None,
        typer.Option(help="A communityId its comments may be stored under (repeatable; * for any). None: it scores."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create an API key and print its secret, which is shown this once."""
    from monitor.store.keys import create_key

    settings = load_settings(config)
    engine = schema.open_store(settings.database.url)
    with transaction(engine) as session:
        secret = create_key(session, name, settings.api.default_qps if qps is None else qps, community or [])
    err.print(f"API key {name!r} created; its secret (shown only now, keep it safe):", markup=False)
    out.print(secret, markup=False)


@keys_app.command("list")
def keys_list(config: ConfigOption = None) -> None:
    """Every API key with its quota; revoked keys stay listed."""
    from monitor.store.keys import list_keys

    engine = schema.open_store(load_settings(config).database.url, readonly=True)
    with transaction(engine) as session:
        keys = list_keys(session)
    if not keys:
        out.print("No API keys yet: `civmon keys create NAME`.", markup=False)
        return
    table = Table(title="API keys")
    for column in ("name", "requests/s", "stores under", "created (UTC)", "revoked (UTC)"):
        table.add_column(column)
    for key in keys:
        revoked = _utc(key.revoked_utc) if key.revoked_utc else "—"
        stores = ", ".join(key.communities) or "— (scores only)"
        _add_text_row(table, key.name, f"{key.qps:g}", stores, _utc(key.created_utc), revoked)
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(name: str, config: ConfigOption = None) -> None:
    """Revoke an API key: the server refuses it from its next request on."""
    from monitor.store.keys import revoke_key

    engine = schema.open_store(load_settings(config).database.url)
    with transaction(engine) as session:
        revoke_key(session, name)
    out.print(Text(f"API key {name!r} revoked."))


@app.command()
def collect(
    config: ConfigOption = None,
    community: Annotated[str | None, typer.Option(help="Collect only this community (name or platform/name).")] = None,
) -> None:
    """One collection pass over the configured communities, with a summary per community."""
    from monitor.sources.collect import collect as collect_pass
    from monitor.stopping import exiting_on

    settings = load_settings(config)
    engine = schema.open_store(settings.database.url)
    check_keying(engine, load_pseudonymiser(settings.privacy))
    with exiting_on(signal.SIGTERM, signal.SIGHUP):  # the run log then says it stopped, not 'running' for good
        outcomes = collect_pass(settings, engine, community)
    table = Table(title="collection")
    for column in ("community", "outcome", "new", "updated", "deleted", "requests"):
        table.add_column(column, justify="left" if column in ("community", "outcome") else "right", no_wrap=True)
    for o in outcomes:
        c = o.counts
        _add_text_row(
            table, o.community, o.status.value, f"{c.new:,}", f"{c.updated:,}", f"{c.deleted:,}", f"{c.requests:,}"
        )
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
    from monitor.stopping import exiting_on

    settings = load_settings(config)
    engine = schema.open_store(settings.database.url)
    check_keying(engine, load_pseudonymiser(settings.privacy))
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[counts]}"),
    )
    with Progress(*columns, console=out) as progress:
        tasks = {
            f: progress.add_task(escape(f.name), total=f.stat().st_size if f.is_file() else None, counts="")
            for f in files
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

        # stopped by SIGTERM or SIGHUP as by Ctrl-C: the run log says so, rather than 'running' for ever
        with exiting_on(signal.SIGTERM, signal.SIGHUP):
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


@app.command()
def score(
    config: ConfigOption = None,
    input_file: Annotated[
        Path | None, typer.Option("--input", help="Score this CSV or JSONL file instead of the store.")
    ] = None,
    text_column: Annotated[str, typer.Option(help="With --input: the column or field holding the text.")] = "text",
    output: Annotated[Path | None, typer.Option(help="With --input: where to write the JSON Lines results.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Score at most this many comments from the store.")] = None,
    worker: Annotated[
        bool, typer.Option("--worker", help="Be one of many scoring processes on a PostgreSQL store, until stopped.")
    ] = False,
    threads: Annotated[
        int | None,
        typer.Option(min=1, help="With --worker: CPU threads (default: scoring.threads, else cores / workers)."),
    ] = None,
    exit_when_idle: Annotated[
        bool, typer.Option("--exit-when-idle", help="With --worker: exit once no comment is pending.")
    ] = False,
) -> None:
    """Score pending comments in the store (safe to stop and restart), or a file with --input/--output."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from monitor.scoring.models import load_scorer

    if input_file is None and (output is not None or text_column != "text"):
        raise CivmonError("--output and --text-column only apply to --input", "add --input FILE, or drop them")
    if input_file is not None and limit is not None:
        raise CivmonError("--limit applies to the store, not to --input", "drop --limit: every row of a file is scored")
    if not worker and (threads is not None or exit_when_idle):
        raise CivmonError("--threads and --exit-when-idle only apply to --worker", "add --worker, or drop them")
    if worker and (input_file is not None or limit is not None):
        raise CivmonError("--worker scores the store until stopped", "drop --input and --limit, or --worker")
    settings = load_settings(config)
    if input_file is not None:
        return _score_file(settings, input_file, text_column, output)
    if worker:
        return _score_worker(settings, threads, exit_when_idle)
    engine = schema.open_store(settings.database.url)
    if engine.dialect.name == "postgresql" and limit is None:  # workers may share it: claim as they do, or both
        return _score_worker(settings, None, exit_when_idle=True)  # score the same comments
    from monitor.scoring.pending import score_pending
    from monitor.stopping import STOP

    scorer = load_scorer(settings.model)
    for sig in (signal.SIGTERM, signal.SIGINT):  # the batch in flight is written, then the summary
        signal.signal(sig, lambda *_: STOP.set())
    columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=out) as progress:
        task = progress.add_task("score", total=None)
        summary = score_pending(
            engine,
            scorer,
            settings.privacy,
            lambda done, total: progress.update(task, completed=done, total=total),
            limit=limit,
        )
    rate = summary.scored / summary.seconds if summary.seconds else 0
    out.print(
        f"model {summary.model_version}: {summary.scored:,} comments scored in {summary.seconds:,.1f} s "
        f"({rate:,.0f}/s); {summary.skipped.total():,} not scored"
        + ("; stopped early: run it again for the rest" if STOP.is_set() else ""),
        markup=False,
    )
    for reason, count in summary.skipped.most_common():
        out.print(f"  {count:,} {reason}", markup=False)


def _score_worker(settings: Settings, threads: int | None, exit_when_idle: bool) -> None:
    import torch

    from monitor.scoring.models import load_scorer
    from monitor.scoring.workers import run_worker, threads_per_worker
    from monitor.stopping import STOP
    from monitor.store.lease import holder_id

    require_shared_database(settings, "civmon score --worker")
    engine = schema.open_store(settings.database.url)
    # before the model loads: its ONNX session takes torch's thread count
    torch.set_num_threads(threads or threads_per_worker(settings.scoring))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: STOP.set())
    summary = run_worker(
        engine, load_scorer(settings.model), settings.privacy, settings.scoring, holder_id(), exit_when_idle
    )
    rate = summary.scored / summary.seconds if summary.seconds else 0
    out.print(
        f"model {summary.model_version}: {summary.scored:,} comments scored by this worker in "
        f"{summary.seconds:,.1f} s ({rate:,.0f}/s); {summary.skipped.total():,} not scored",
        markup=False,
    )


def _score_file(settings: Settings, source: Path, text_column: str, output: Path | None) -> None:
    from monitor.scoring.files import NOT_UTF8, check_paths, score_file
    from monitor.scoring.models import load_scorer
    from monitor.stopping import exiting_on

    if output is None:
        raise CivmonError("--input needs --output", "e.g. --output scores.jsonl")
    kind = check_paths(source, output, text_column)  # a wrong path or column is told before the model loads
    scorer = load_scorer(settings.model)
    # results streamed to /dev/stdout or a pipe: the progress and summary keep out of them
    console = out if kind == "file" else err
    # a stopped run removes its unfinished output, as Ctrl-C does; the earlier results stay
    with exiting_on(signal.SIGTERM, signal.SIGHUP), _progress("scoring...", console, every_s=30) as progress:
        counts = score_file(scorer, source, text_column, output, lambda rows: progress(f"scoring: {rows:,} rows"))
    console.print(
        f"{output}: {counts.rows:,} rows, {counts.scored:,} scored, {counts.not_scored:,} not scored "
        f"(each with its reason); model {scorer.version}",
        markup=False,
    )
    if counts.reasons:
        common = ", ".join(f"{n:,} {reason}" for reason, n in counts.reasons.most_common(REASONS_SHOWN))
        console.print(f"  not scored: {common}", markup=False)
    if counts.reasons[NOT_UTF8]:  # a Latin-1 or Windows-1252 export: every row with an accent is lost
        console.print(
            f"  {source} is not all UTF-8: re-encode it (e.g. iconv -f windows-1252 -t utf-8 {source} > "
            f"{source.with_stem(source.stem + '-utf8')}) and score that file",
            markup=False,
        )


@app.command()
def backfill(
    inputs: Annotated[list[Path], typer.Argument(help="Reddit dumps (.zst or NDJSON) and CSV/JSONL/JSON corpora.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the Parquet partitions (a rerun resumes it).")],
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="A Dask scheduler (tcp://HOST:8786), whose workers see the inputs and --out at the same paths "
            "(a shared filesystem); default: a local cluster."
        ),
    ] = None,
    text_column: Annotated[str, typer.Option(help="Corpora: the column or field holding the text.")] = "text",
    workers: Annotated[
        int | None, typer.Option(min=1, max=512, help="Local cluster: worker processes (default: one per core).")
    ] = None,
    partition_rows: Annotated[int, typer.Option(min=1, help="Records (lines, rows) per partition: one task each.")] = (
        50_000
    ),
    into_store: Annotated[
        bool,
        typer.Option(
            "--into-store", help="Dumps only: then store the comments and their scores in the configured database."
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Score dumps and corpora on a Dask cluster into partitioned Parquet; rerun to resume.

    A file is a Reddit dump when it is zstd, its name starts with RC_ or RS_, or its first line has
    Pushshift's fields (subreddit, link_id or title); any other .csv/.jsonl/.json is a corpus, read as
    `civmon score --input` reads it. Every record becomes one row, a bad line too (no scores, its
    skip_reason says why). Without --scheduler a local cluster runs here. --into-store then writes,
    from this machine, the dumps (as `civmon import`) and their scores (as `civmon score`) into the
    database, so the dashboard shows the backfilled years once `civmon metrics` has rolled them up.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from monitor.backfill.run import Options
    from monitor.backfill.run import backfill as run_backfill

    if scheduler and workers:
        raise CivmonError("--workers sizes the local cluster", "drop it: a cluster at --scheduler has its own workers")
    settings = load_settings(config)
    options = Options(inputs, out_dir, text_column, partition_rows, scheduler, workers, into_store)
    columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("records"), TimeRemainingColumn())
    progress = Progress(*columns, console=out)  # shown from the first partition: a refused input needs no bar
    task = progress.add_task("backfill", total=None)

    def advance(done: int, total: int) -> None:
        progress.start()
        progress.update(task, completed=done, total=total)

    try:
        summary = run_backfill(settings, options, lambda line: out.print(line, markup=False), advance)
    finally:
        progress.stop()
    out.print(
        f"{out_dir}: {summary.rows:,} rows in {summary.partitions:,} partitions ({summary.already_written:,} "
        f"written before), {summary.scored:,} scored, {summary.rows - summary.scored:,} not scored (each with "
        f"its skip_reason), {summary.bad:,} bad lines; model {summary.model_version}",
        markup=False,
    )
    for problem in [*summary.damaged, *summary.problems[:20]]:
        out.print(f"  {problem}", markup=False)
    if summary.bad > 20:
        out.print(f"  ... each of the {summary.bad:,} bad lines is a row whose skip_reason starts with 'bad line'")
    if summary.store:
        out.print(
            f"stored in {display_url(settings.database.url)}: {summary.store.comments:,} comments, "
            f"{summary.store.scores:,} scores. Next: `civmon metrics` rolls them up.",
            markup=False,
        )
        for problem in summary.store.problems:
            out.print(f"  {problem}", markup=False)
    unreadable = summary.rows > 0 and summary.bad == summary.rows  # a file of another format: nothing was read
    if unreadable:
        out.print("every record is a bad line: check the inputs' format and --text-column", markup=False)
    if summary.failed or summary.damaged or unreadable:
        raise typer.Exit(1)


@app.command()
def metrics(config: ConfigOption = None) -> None:
    """Refresh the rollups (only the buckets that changed), raise spike alerts and deliver them."""
    from monitor.metrics.job import run_metrics

    settings = load_settings(config)
    engine = schema.open_store(settings.database.url)
    summary = run_metrics(engine, settings.alerts)
    if summary.model_version is None:
        out.print("No scores yet: run `civmon score` first.", markup=False)
        return
    for version, rows in summary.rollup_rows.items():
        out.print(f"rollups for {version}: {rows:,} bucket rows recomputed", markup=False)
    for alert in summary.alerts:
        out.print(f"[red]alert[/red]: {escape(alert.message)}")
    out.print(
        f"{len(summary.alerts)} new alerts ({summary.delivered} sent to the webhook); "
        f"following model {summary.model_version}",
        markup=False,
    )


@app.command()
def export(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the files.")],
    config: ConfigOption = None,
    community: Annotated[list[str] | None, typer.Option(help="Only these communities (repeatable).")] = None,
    since: Annotated[str | None, typer.Option(help="From this date or time, UTC (inclusive): 2023-05-01.")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this date or time, UTC (exclusive).")] = None,
    file_format: Annotated[list[str] | None, typer.Option("--format", help="csv and/or parquet.")] = None,
    model_version: Annotated[str | None, typer.Option(help="Scores of this model version (default: in use).")] = None,
    drop_ids: Annotated[
        bool, typer.Option(help="For sharing: no platform ids, permalinks or bodies; times to the hour.")
    ] = False,
) -> None:
    """Export comment-level scores and rollups to CSV and Parquet, with a data dictionary."""
    from monitor.metrics.export import Filters, moment
    from monitor.metrics.export import export as write_export
    from monitor.metrics.job import current_version
    from monitor.stopping import exiting_on

    settings = load_settings(config)
    formats = file_format or ["csv", "parquet"]
    if unknown := set(formats) - {"csv", "parquet"}:
        raise CivmonError(f"unknown format {', '.join(sorted(unknown))}", "use --format csv and/or --format parquet")
    engine = schema.open_store(settings.database.url, readonly=True)
    with transaction(engine) as session:
        version = model_version or current_version(session)
    if version is None:
        raise CivmonError("nothing is scored yet, so there is nothing to export", "run `civmon score` first")
    filters = Filters(version, community or (), moment("--since", since), moment("--until", until))
    # a stopped export removes its scratch folder, as Ctrl-C does: it holds what --drop-ids leaves out
    with exiting_on(signal.SIGTERM, signal.SIGHUP), _progress("exporting...", every_s=30) as progress:
        written = write_export(
            engine,
            filters,
            out_dir,
            formats,
            settings.privacy.keep_bodies,
            drop_ids,
            progress=lambda comments: progress(f"exporting: {comments:,} comments written"),
        )
    for path in written.paths:
        out.print(f"written: {path} ({path.stat().st_size:,} bytes)", markup=False)
    if written.unscored:
        out.print(
            f"{written.unscored:,} comments are not scored yet by {version} (their skip_reason says so): run "
            "`civmon score`, then export again",
            markup=False,
        )


@app.command()
def train(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the trained model (adapters, heads, card).")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same model.")] = 0,
    max_rows: Annotated[
        int | None, typer.Option(help="Use at most this many training rows per task (a quick run).")
    ] = None,
    device: Annotated[str, typer.Option(help='"cpu", "cuda" or "auto" (the GPU where there is one).')] = "cpu",
) -> None:
    """Train the alliance model's adapters and heads on the labelled data in ../shared/data."""
    from monitor.scoring.train import train as run_training

    with _progress("training...") as progress:  # train() names any training file that is missing
        card = run_training(out_dir, seed=seed, max_rows=max_rows, device=device, progress=progress)
    out.print(
        f"{out_dir}: model {card.name}, dimensions {', '.join(card.dimensions)}. "
        f'Score with it: [model] name = "{out_dir}"',
        markup=False,
    )


@app.command("eval")
def eval_(
    config: ConfigOption = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for eval.json and eval.md.")] = Path("civmon-eval"),
    peers: Annotated[bool, typer.Option(help="Also score with VADER and alt-profanity-check (civmon[eval]).")] = True,
) -> None:
    """Accuracy on held-out test splits (with offline peers side by side) and an identity-term bias audit."""
    from monitor.scoring import datasets
    from monitor.scoring.alliance import DEFAULT_MODEL
    from monitor.scoring.bias import audit_scorer
    from monitor.scoring.evaluate import (
        PERSPECTIVE,
        PERSPECTIVE_TASKS,
        continuity,
        evaluate,
        peer_functions,
        perspective_reference,
        scorer_function,
        write_report,
    )
    from monitor.scoring.models import default_scorer, load_scorer

    settings = load_settings(config)
    if not datasets.available():
        raise CivmonError(
            f"the labelled data sets are not at {datasets.data_dir()}",
            "set CIVMON_SHARED_DATA to the folder holding them",
        )
    configured = load_scorer(settings.model)
    scorers = [configured]
    if settings.model.name != DEFAULT_MODEL:  # the built-in model beside the configured one (once: by version)
        scorers.insert(0, default_scorer(settings.model))
    models = {s.version: (scorer_function(s), dict(s.thresholds)) for s in scorers}
    if peers:
        models |= {name: (fn, {}) for name, fn in peer_functions().items()}  # no threshold of theirs: 0.5
    with _progress("evaluating...") as progress:
        rows = evaluate(models, progress=progress)
        reference = {PERSPECTIVE: (perspective_reference(), {"hostility": 0.5})}  # its own published scores
        rows += evaluate(reference, PERSPECTIVE_TASKS, progress)
        progress("identity-term bias audit")
        bias = audit_scorer(configured)
        progress("continuity with Perspective's TOXICITY")
        perspective = continuity(models[configured.version][0])
    out.print(eval_table(rows))
    if perspective:
        out.print(perspective_table(perspective))
    for b in bias:
        out.print(
            f"bias audit of {configured.version}, {b['dimension']}, {b['category']}: "
            f"neutral spread {b['neutral_spread']:.3f}, "
            f"hostile spread {b['hostile_spread']:.3f} (most flagged: {b['worst_group']})",
            markup=False,
        )
    as_json, as_markdown = write_report(rows, bias, out_dir, audited=configured.version, perspective=perspective)
    out.print(f"written: {as_json}, {as_markdown}", markup=False)


def eval_table(rows: Sequence[Row]) -> Table:
    """`civmon eval`'s figures, one row per model, task and dimension."""
    from monitor.scoring.evaluate import cells

    table = Table(title="held-out test splits")
    for column in ("task", "dimension", "model", "n", "ROC-AUC", "95% CI", "PR-AUC", "F1", "ECE", "Spearman"):
        text = column in ("task", "dimension", "model")  # text wraps in a narrow terminal; figures never do
        table.add_column(column, justify="left" if text else "right", overflow="fold", no_wrap=not text)
    for r in rows:
        _add_text_row(table, r.task, r.dimension, r.model, f"{r.n:,}", *cells(r))
    return table


def perspective_table(perspective: dict[str, Any]) -> Table:
    """How often civmon's TOXICITY agrees with Perspective's at its thresholds; both Spearmans in the title."""
    from monitor.scoring.evaluate import agreement_cells, figure_cell, interval_cell

    table = Table(
        title=f"continuity with Perspective's TOXICITY on {perspective['n']:,} CAT test posts: Spearman of civmon's "
        f"TOXICITY {figure_cell(perspective['spearman'])} (95% CI {interval_cell(perspective['ci95'])}), of "
        f"hostility {figure_cell(perspective['hostility_spearman'])} "
        f"(95% CI {interval_cell(perspective['hostility_ci95'])})"
    )
    for column in ("threshold", "Perspective above", "civmon above", "both", "agreement", "kappa"):
        table.add_column(column, justify="right", no_wrap=True)
    for a in perspective["agreement"]:
        table.add_row(*agreement_cells(a))
    return table


@bench_app.command("score")
def bench_score(
    limit: Annotated[int, typer.Option(help="Comments to time (0: all, the natural mix).")] = 0,
    rounds: Annotated[int, typer.Option(min=1, help="Timings of each path, interleaved; the median is reported.")] = 3,
) -> None:
    """Scoring speed: plain PyTorch fp32 against the fast path, with hostility ROC-AUC of each."""
    from monitor.bench.score import report

    out.print(report(limit, rounds), markup=False)


@bench_app.command("rollups")
def bench_rollups(
    sizes: Annotated[list[int] | None, typer.Option("--size", help="Store sizes in comments (repeatable).")] = None,
    postgres_url: Annotated[str | None, typer.Option(help="Measure on PostgreSQL (a scratch database).")] = None,
) -> None:
    """Rollup rebuild time at each size, and the incremental refresh for 1,000 new comments at the largest."""
    from monitor.bench.rollups import report

    out.print(report(sizes or [100_000, 1_000_000], postgres_url), markup=False)


@bench_app.command("dashboard")
def bench_dashboard() -> None:
    """Time to render the Overview and a Community page at 10k and 1M stored comments (cold cache)."""
    from monitor.bench.dashboard import report

    out.print(report(), markup=False)


@bench_app.command("serve")
def bench_serve(
    requests: Annotated[int, typer.Option(help="Timed requests per concurrency level.")] = 600,
    concurrency: Annotated[list[int] | None, typer.Option(help="Concurrency levels (repeatable).")] = None,
    url: Annotated[str | None, typer.Option(help="A server already running (default: spawn one, --no-auth).")] = None,
    key: Annotated[str | None, typer.Option(help="API key for --url.", envvar="CIVMON_BENCH_KEY")] = None,
) -> None:
    """civmon serve's requests/s and p50/p99 latency at concurrency 1, 8 and 32, against civmon score's rate."""
    from monitor.bench.serve import LEVELS
    from monitor.bench.serve import bench_serve as run_bench

    run_bench(requests, tuple(concurrency or LEVELS), url, key, emit=lambda line: out.print(line, markup=False))


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


@bench_app.command("backfill")
def bench_backfill(
    texts: Annotated[
        int, typer.Option(min=100, help="Real Reddit comments to score (repeated if a set is smaller).")
    ] = (20_000),
    postgres_url: Annotated[
        str | None, typer.Option(help="Also time 1 and 2 `civmon score --worker` processes on this PostgreSQL server.")
    ] = None,
) -> None:
    """Backfill speed with 1 and 2 local Dask workers (and --worker processes on PostgreSQL), with the ratio."""
    from monitor.bench.backfill import report

    report(texts, postgres_url, emit=lambda line: out.print(line, markup=False))


# An error may quote a file's header or a path: its escape sequences would drive the user's terminal.
CONTROL_CHARACTERS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0)) if c != ord("\n")}


def main() -> None:
    from monitor import logs

    logs.configure()
    try:
        app(standalone_mode=True)
    except CivmonError as exc:
        message = escape(str(exc).translate(CONTROL_CHARACTERS))
        err.print(f"[red]error:[/red] {message}")
        sys.exit(2)
