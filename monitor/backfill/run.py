"""The client side of `civmon backfill`: check the inputs and the folder, count, start or join a Dask
cluster, submit the partitions not written yet, follow them, and say what became of every input."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from distributed import Client, LocalCluster, as_completed
from distributed.comm import get_address_host_port

from monitor.backfill.inputs import check_dump, count_records, input_kind
from monitor.backfill.partitions import (
    DamagedPartition,
    InputEntry,
    Manifest,
    Partition,
    check_same_run,
    folder_name,
    locked,
    plan,
    read_manifest,
    remove_temporaries,
    written_summary,
)
from monitor.backfill.store import ModelInfo, StoreSummary, into_store
from monitor.backfill.worker import ScoringPlugin, model_info, score_partition
from monitor.config import Settings
from monitor.errors import CivmonError
from monitor.privacy import load_pseudonymiser
from monitor.scoring.workers import cores, share_of_cores
from monitor.store import schema
from monitor.store.authorship import check_keying

PARTITION_ROWS = 50_000
PROBLEMS_SHOWN = 20
CONNECT_SECONDS = 10  # to a --scheduler: one that is up answers at once
Emit = Callable[[str], None]
Progress = Callable[[int, int], None]  # (records done, records in all)


@dataclass(frozen=True)
class Options:
    inputs: list[Path]
    out: Path
    text_column: str = "text"
    partition_rows: int = PARTITION_ROWS
    scheduler: str | None = None  # None: a LocalCluster of `workers` processes on this machine
    workers: int | None = None
    into_store: bool = False


@dataclass
class Summary:
    model_version: str = ""
    partitions: int = 0
    already_written: int = 0
    rows: int = 0
    scored: int = 0
    bad: int = 0
    problems: list[str] = field(default_factory=list)  # file:line: why (the first bad lines); failed partitions
    damaged: list[str] = field(default_factory=list)  # inputs that break off, and after which line
    failed: int = 0
    store: StoreSummary | None = None


def backfill(
    settings: Settings, options: Options, emit: Emit, progress: Progress | None = None, client: Client | None = None
) -> Summary:
    """Run (or resume) the backfill; `client`: a Dask client to use instead of the one the options name."""
    options = replace(options, out=options.out.resolve())  # the workers' paths: a cluster's workers have their own cwd
    entries = _inputs(options)
    read_manifest(options.out)  # a folder no backfill made is refused before the lock is written into it
    with locked(options.out):
        return _locked_backfill(settings, options, entries, emit, progress, client)


def _locked_backfill(
    settings: Settings,
    options: Options,
    entries: list[InputEntry],
    emit: Emit,
    progress: Progress | None,
    client: Client | None,
) -> Summary:
    old = read_manifest(options.out)  # again: another run may have written it before this one took the lock
    manifest = Manifest(options.partition_rows, options.text_column, entries)
    if old:
        check_same_run(old, manifest, options.out)
        manifest = replace(manifest, inputs=old.inputs)  # counted before: the files are the same
    engine = schema.open_store(settings.database.url) if options.into_store else None  # told now, not after hours
    pseudonymiser = load_pseudonymiser(settings.privacy)  # a missing or weak key too
    if engine is not None:
        check_keying(engine, pseudonymiser)  # one the store's authors were not keyed with, too
    with _client(options, client, emit) as dask:  # an unreachable scheduler told before the counting, too
        if not old:
            emit(f"counting the records of {len(entries)} inputs...")
            manifest = replace(manifest, inputs=[_counted(e, options.text_column) for e in entries])
        threads = _model_threads(dask, options, given=client is not None)
        dask.register_plugin(ScoringPlugin(settings.model, pseudonymiser, threads))
        model = _model(dask)
        manifest = replace(manifest, model_version=model.version)
        if old:
            check_same_run(old, manifest, options.out)
        manifest.write(options.out)
        summary = _score(dask, manifest, options.out, emit, progress)
    summary.model_version = model.version
    summary.damaged = [
        f"{Path(e.path).name}: after line {e.records:,}: {e.damage}" for e in manifest.inputs if e.damage
    ]
    if engine is not None:
        if summary.failed:
            emit("not stored: partitions failed; rerun the backfill to finish them, then it stores")
        else:
            dumps = [Path(e.path) for e in manifest.inputs]
            summary.store = into_store(settings, engine, dumps, options.out, model, emit)
    return summary


def _inputs(options: Options) -> list[InputEntry]:
    """Each input as the manifest records it (not counted yet); refuses what this backfill cannot do."""
    entries, folders = [], {}
    for given in options.inputs:
        path = given.resolve()
        kind = input_kind(path)
        if (name := folder_name(path)) in folders:
            raise CivmonError(
                f"two inputs would share the output folder {name}: {folders[name]} and {given}",
                "rename one of them, or back them up in two runs with their own --out",
            )
        folders[name] = given
        if options.into_store and kind == "corpus":
            raise CivmonError(
                f"--into-store takes Reddit dumps only, and {given} is a corpus (no community, thread or time)",
                "drop --into-store to score it into Parquet, or give the dump it came from",
            )
        if kind == "dump":
            check_dump(path)
        status = path.stat()
        entries.append(InputEntry(str(path), kind, status.st_size, status.st_mtime_ns, 0, None))
    return entries


def _counted(entry: InputEntry, text_column: str) -> InputEntry:
    count = count_records(Path(entry.path), entry.kind, text_column)
    return replace(entry, records=count.records, damage=count.damage)


@contextmanager
def _client(options: Options, given: Client | None, emit: Emit) -> Iterator[Client]:
    logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO lines would bury the progress
    if given is not None:
        yield given
        return
    if options.scheduler:
        with _connect(options.scheduler) as client:
            _announce(client, emit)
            emit("waiting for the cluster's first worker...")
            client.wait_for_workers(1)
            yield client
        return
    workers = options.workers or cores()
    # on loopback only: the dashboard shows the tasks (paths, errors) to whoever reaches its port
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    )
    with cluster, Client(cluster) as client:
        emit(f"local Dask cluster: {workers} worker processes, {share_of_cores(workers)} model threads each")
        _announce(client, emit)
        yield client


def _connect(address: str) -> Client:
    try:
        get_address_host_port(address)  # first: a Client given no address leaves this process unable to start one
        return Client(address, timeout=CONNECT_SECONDS)
    except (OSError, ValueError) as exc:  # not an address, or refused or timed out (an OSError)
        raise CivmonError(
            f"cannot reach the Dask scheduler at {_hidden(address)} ({_hidden(str(exc))})",
            "check the address (tcp://HOST:8786), that the scheduler runs, and that this machine may reach its port",
        ) from None


def _hidden(text: str) -> str:
    """Any user:password@ in an address left out: never printed."""
    return re.sub(r"[^\s/'\"]+@", "***@", text)


def _announce(client: Client, emit: Emit) -> None:
    if "dashboard" in client.scheduler_info().get("services", {}):
        emit(f"Dask dashboard: {client.dashboard_link}")
    else:
        emit("Dask dashboard: not served (the scheduler needs the bokeh package for it)")


def _model_threads(client: Client, options: Options, given: bool) -> int | None:
    """This machine's cores shared among its workers; on a cluster, every core a worker process may use."""
    if options.scheduler and not given:
        return None
    return share_of_cores(len(client.scheduler_info()["workers"]))


def _model(client: Client) -> ModelInfo:
    """The model every worker loaded: one version, or the scores would mix models."""
    found = {tuple(sorted((k, str(v)) for k, v in info.items())): info for info in client.run(model_info).values()}
    if len(found) != 1:
        versions = sorted({info["version"] for info in found.values()})
        raise CivmonError(
            f"the workers loaded different models: {', '.join(versions)}",
            "give every worker the same model files and [model] settings",
        )
    info = next(iter(found.values()))
    return ModelInfo(info["version"], info["name"], tuple(info["dimensions"]), info["thresholds"])


def _score(client: Client, manifest: Manifest, out: Path, emit: Emit, progress: Progress | None) -> Summary:
    summary = Summary()
    remove_temporaries(out)  # a dead run's half-written partitions: redone below
    parts = [p for entry in manifest.inputs for p in plan(entry, manifest.text_column, manifest.partition_rows, out)]
    summary.partitions = len(parts)
    total = sum(p.records for p in parts)
    outcomes: dict[Partition, dict[str, Any] | BaseException] = {}  # a partition's summary, or why it failed
    for part in parts:
        try:
            if (written := written_summary(Path(part.target))) is not None:
                outcomes[part] = written
        except DamagedPartition as exc:
            Path(part.target).unlink()
            emit(f"{part.target} is damaged ({exc}): removed, and scored again")
    summary.already_written = len(outcomes)
    pending = [p for p in parts if p not in outcomes]
    done = total - sum(p.records for p in pending)
    if progress:
        progress(done, total)
    run = uuid.uuid4().hex[:8]  # task names of this run, told apart from another's on a shared scheduler
    keys = [f"civmon-backfill-{folder_name(Path(p.path))}-{p.index:06d}-{run}" for p in pending]
    futures = client.map(score_partition, pending, key=keys, pure=False) if pending else []
    by_key = dict(zip(keys, pending, strict=True))
    for future in as_completed(futures):
        part = by_key[future.key]
        try:
            outcomes[part] = future.result()
        except Exception as exc:  # one partition's failure stops none of the others
            outcomes[part] = exc
        done += part.records
        if progress:
            progress(done, total)
    remove_temporaries(out)  # those of workers that died mid-write
    for part in parts:  # in input order, whichever finished first
        _add(summary, part, outcomes[part])
    return summary


def _add(summary: Summary, part: Partition, outcome: dict[str, Any] | BaseException) -> None:
    name = Path(part.path).name
    if isinstance(outcome, BaseException):
        summary.failed += 1
        summary.problems.append(f"{name}: lines {part.first:,}-{part.last:,} failed: {outcome!r}")
        return
    summary.rows += outcome["rows"]
    summary.scored += outcome["scored"]
    summary.bad += outcome["bad"]
    summary.problems += [f"{name}:{line}: {reason}" for line, reason in outcome["bad_lines"]]
