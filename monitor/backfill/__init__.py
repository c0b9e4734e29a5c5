"""`civmon backfill`: score research corpora and Reddit dumps on a Dask cluster, into partitioned Parquet.

The client counts each input's records (lines of a dump, rows of a corpus), cuts them into partitions
of a fixed size, and submits one small task per partition; each task scores its records with the model
its worker loaded once (a WorkerPlugin) and writes one Parquet file, complete or not at all. A rerun
skips the partitions already written, so a killed worker or a killed run loses nothing.

inputs.py      which inputs are dumps and which corpora, counting them, reading one partition's rows
partitions.py  where each partition's file lies, writing it atomically, the folder's manifest
worker.py      the worker plugin (model and pseudonymiser, once per worker) and the partition task
run.py         the client: plan, cluster, progress, summary
store.py       --into-store: the dumps and their scores into the configured database
"""
