"""What runs on the Dask workers: the model, loaded once per worker, and the task that scores one partition.

The task scores with `monitor.scoring.results.score_texts` and builds each row's scores with
`civmon score --input`'s `output_record`, so a record gets the same scores, version and skip reason
whichever path scored it (a row that cannot be read: its reason, after "bad line: "). It is pure in what
it leaves: run twice (a worker died and Dask ran it again), it writes the same file, moved into place whole.
"""

from __future__ import annotations

import threading
import time
from itertools import islice
from pathlib import Path
from typing import Any

from distributed import Worker, WorkerPlugin, get_worker

from monitor.backfill.inputs import BAD_LINE, Record, read_records
from monitor.backfill.partitions import SCHEMA, Partition, write_partition
from monitor.config import ModelSettings
from monitor.privacy import Pseudonymiser
from monitor.scoring.base import DIMENSIONS, Scorer
from monitor.scoring.files import BATCH, output_record
from monitor.scoring.results import score_texts
from monitor.scoring.workers import cores

PLUGIN = "civmon-backfill"
BAD_LINES_KEPT = 20  # per partition, in its summary; every bad line is a row with its reason all the same


class ScoringPlugin(WorkerPlugin):
    """The model and the pseudonymiser, set up once on each worker (and again on one that replaces a dead one).

    The pseudonymiser travels inside this plugin, pickled, from the client through the scheduler to each
    worker: its key is never printed (its repr shows none), but on a network that others can read, run the
    cluster with Dask's TLS. `threads`: the model's CPU threads; None takes every core this process may use.
    """

    name = PLUGIN

    def __init__(self, model: ModelSettings, pseudonymiser: Pseudonymiser, threads: int | None) -> None:
        self.model = model
        self.pseudonymiser = pseudonymiser
        self.threads = threads

    def setup(self, worker: Worker) -> None:
        import torch

        from monitor.scoring.models import load_scorer

        # Dask's nanny sets OMP_NUM_THREADS=1 in its workers; the model's threads are chosen here instead,
        # before it loads (ONNX Runtime's intra-op threads follow torch's count).
        torch.set_num_threads(self.threads or cores())
        self.scorer: Scorer = load_scorer(self.model)
        # a worker with several threads scores one batch at a time: its cores are the model's
        self.lock = threading.Lock()


def model_info(dask_worker: Worker) -> dict[str, Any]:
    """What the client needs of the workers' model (`Client.run` on each worker: they must agree)."""
    scorer = dask_worker.plugins[PLUGIN].scorer
    return {
        "version": scorer.version,
        "name": scorer.name,
        "dimensions": list(scorer.dimensions),
        "thresholds": dict(scorer.thresholds),
    }


def score_partition(part: Partition) -> dict[str, Any]:
    """Score one partition into its Parquet file; returns its summary."""
    plugin: ScoringPlugin = get_worker().plugins[PLUGIN]
    start = time.perf_counter()
    records = read_records(Path(part.path), part.kind, part.text_column, part.first, part.last, plugin.pseudonymiser)
    columns: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    summary: dict[str, Any] = {"rows": 0, "scored": 0, "bad": 0, "bad_lines": []}
    while batch := list(islice(records, BATCH)):
        with plugin.lock:
            _score_batch(plugin.scorer, batch, Path(part.path).name, columns, summary)
    summary["seconds"] = round(time.perf_counter() - start, 3)
    write_partition(Path(part.target), columns, summary)
    return summary


def _score_batch(
    scorer: Scorer, batch: list[Record], source: str, columns: dict[str, list[Any]], summary: dict[str, Any]
) -> None:
    scorable = [r.row for r in batch if r.row.problem is None]
    results = iter(score_texts(scorer, [row.text for row in scorable]))
    for record in batch:
        scored = output_record(record.line, record.row, None if record.row.problem else next(results), scorer)
        row = {
            "source_file": source,
            "source_line": record.line,
            **record.fields,
            **{d: scored.get(d) for d in DIMENSIONS},
            "perspective_toxicity": scored["perspective_toxicity"],
            "alliance": scored["alliance"],
            "language": scored["language"],
            "model_version": scored["model_version"],
            "skip_reason": scored["reason"],
        }
        for name, values in columns.items():
            values.append(row.get(name))
        summary["rows"] += 1
        summary["scored"] += scored["reason"] is None
        if (record.row.problem or "").startswith(BAD_LINE):
            summary["bad"] += 1
            if len(summary["bad_lines"]) < BAD_LINES_KEPT:
                summary["bad_lines"].append([record.line, record.row.problem])
