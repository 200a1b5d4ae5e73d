"""Parsing landing files off the main process: one file in, its Arrow rows and rejects out.

The loaders parse files with `parse_csv` / `parse_jsonl` exactly as before; what changed is where:
a large load hands each new file to a small pool of spawned worker processes (files are
independent), which also build the file's Arrow table (data columns + lineage), so the main
process holds no per-row Python objects and only concatenates tables and writes them to DuckDB.
Results are consumed in file order, so every warehouse write happens in the same order as a
serial load. Small loads (tests, incremental runs) parse in process through the same function.
"""

import datetime as dt
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa

from customer_pipeline.ingest.formats import APP_EVENT_COLUMNS, CSV_FAMILIES
from customer_pipeline.ingest.parsing import Reject, parse_csv, parse_jsonl
from customer_pipeline.ingest.store import RowBatch

# new data (bytes) a load must reach before it parses in worker processes (spawning costs ~1 s)
PARALLEL_MIN_BYTES = 8 * 2**20
# files handed to the pool ahead of the one being written (bounds the memory held in results)
_AHEAD_PER_WORKER = 3


def worker_count() -> int:
    """Worker processes for a large load: `CUSTOMER_PIPELINE_WORKERS`, else up to 2 (cores)."""
    configured = os.environ.get("CUSTOMER_PIPELINE_WORKERS", "").strip()
    if configured:
        return max(0, int(configured))
    return min(2, os.cpu_count() or 1)


@dataclass
class ParsedFile:
    """One parsed file: a file-level error, or its rows as an Arrow table (lineage included) and rejects."""

    file_error: str | None = None
    table: pa.Table | None = None
    rejects: list[Reject] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return 0 if self.table is None else self.table.num_rows

    @property
    def rows_read(self) -> int:
        return self.rows_loaded + len(self.rejects)


def parse_file(kind: str, data: bytes, source: str, rel: str, digest: str,
               now: dt.datetime, run_id: str) -> ParsedFile:
    """`kind` is a CSV family name or `app_events`; the rows come out as `RowBatch.arrow` builds them."""
    if kind == "app_events":
        parsed = parse_jsonl(data, gzipped=rel.endswith(".gz"))
        columns = APP_EVENT_COLUMNS
    else:
        family = CSV_FAMILIES[kind]
        parsed = parse_csv(data, family)
        columns = family.columns
    if parsed.file_error:
        return ParsedFile(file_error=parsed.file_error)
    batch = RowBatch(columns)
    batch.add(parsed.rows, parsed.refs, source, rel, digest)
    return ParsedFile(table=batch.arrow(now, run_id), rejects=parsed.rejects)


class _Done:
    """A result computed in process, with the interface of a future."""

    def __init__(self, value):
        self._value = value

    def result(self):
        return self._value


class FileParser:
    """Parses files in submission order, in process or, once a load has brought `PARALLEL_MIN_BYTES`
    of new data, in a spawned pool; results come back in submission order.

    `submit(key, *parse_file_args)` or `passthrough(key, value)` for every file in order; `ready()`
    yields (key, result) of the oldest entries while too many are pending, `drain()` all the rest.
    """

    def __init__(self, workers: int | None = None, min_bytes: int | None = None):
        self.workers = worker_count() if workers is None else workers
        self.min_bytes = PARALLEL_MIN_BYTES if min_bytes is None else min_bytes
        self.pool: Executor | None = None
        self.submitted_bytes = 0
        self.ahead = max(1, self.workers) * _AHEAD_PER_WORKER
        self.pending: deque = deque()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def submit(self, key, kind: str, data: bytes, *args) -> None:
        self.submitted_bytes += len(data)
        if self.pool is None and self.workers >= 1 and self.submitted_bytes >= self.min_bytes:
            self.pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))
        if self.pool is None:
            self.pending.append((key, _Done(parse_file(kind, data, *args))))
        else:
            self.pending.append((key, self.pool.submit(parse_file, kind, data, *args)))

    def passthrough(self, key, value) -> None:
        self.pending.append((key, _Done(value)))

    def ready(self) -> Iterator[tuple]:
        while self.pending and (len(self.pending) > self.ahead or isinstance(self.pending[0][1], _Done)):
            key, fut = self.pending.popleft()
            yield key, fut.result()

    def drain(self) -> Iterator[tuple]:
        while self.pending:
            key, fut = self.pending.popleft()
            yield key, fut.result()
