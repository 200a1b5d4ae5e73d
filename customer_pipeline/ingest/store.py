"""Warehouse tables of the raw layer: creation, batched inserts, quarantine and load bookkeeping."""

import datetime as dt

import duckdb
import pyarrow as pa

from customer_pipeline.ingest.parsing import Reject

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS quarantine.rejected_records (
    source VARCHAR, location VARCHAR, record_ref VARCHAR, raw_record VARCHAR,
    reason VARCHAR, rejected_at TIMESTAMP, run_id VARCHAR
)"""

LOADED_FILES_DDL = """
CREATE TABLE IF NOT EXISTS meta.loaded_files (
    source VARCHAR, family VARCHAR, location VARCHAR, content_hash VARCHAR,
    rows_read BIGINT, rows_loaded BIGINT, rows_duplicate BIGINT, rows_quarantined BIGINT,
    file_error VARCHAR, loaded_at TIMESTAMP, run_id VARCHAR
)"""

EXTRACT_LOG_DDL = """
CREATE TABLE IF NOT EXISTS meta.extract_log (
    source VARCHAR, location VARCHAR, watermark_from VARCHAR, watermark_to VARCHAR,
    rows_read BIGINT, rows_loaded BIGINT, rows_unchanged BIGINT, rows_quarantined BIGINT,
    loaded_at TIMESTAMP, run_id VARCHAR
)"""

WATERMARKS_DDL = """
CREATE TABLE IF NOT EXISTS meta.watermarks (
    source VARCHAR, table_name VARCHAR, watermark VARCHAR, updated_at TIMESTAMP,
    PRIMARY KEY (source, table_name)
)"""

LOADED_FILES_COLUMNS = (
    "source", "family", "location", "content_hash", "rows_read", "rows_loaded", "rows_duplicate",
    "rows_quarantined", "file_error", "loaded_at", "run_id",
)
QUARANTINE_COLUMNS = ("source", "location", "record_ref", "raw_record", "reason", "rejected_at", "run_id")


def ensure_meta(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in (QUARANTINE_DDL, LOADED_FILES_DDL, EXTRACT_LOG_DDL, WATERMARKS_DDL):
        con.execute(ddl)


def ensure_raw_table(con: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...]) -> None:
    cols = ", ".join(f'"{c}" VARCHAR' for c in columns)
    con.execute(
        f"CREATE TABLE IF NOT EXISTS raw.{table} ({cols}, _source VARCHAR, _location VARCHAR, "
        "_record_ref VARCHAR, _content_hash VARCHAR, _ingested_at TIMESTAMP, _run_id VARCHAR)"
    )


class RowBatch:
    """Rows of many files collected column-wise, written with one insert (fast for thousands of files)."""

    def __init__(self, columns: tuple[str, ...]):
        self.columns = columns
        self.values: list[list] = [[] for _ in columns]
        self.lineage: dict[str, list] = {c: [] for c in ("_source", "_location", "_record_ref", "_content_hash")}

    def add(self, rows: list[tuple], refs: list[str], source: str, location: str, content_hashes) -> None:
        if not rows:
            return
        for i, col in enumerate(zip(*rows)):
            self.values[i].extend(col)
        n = len(rows)
        self.lineage["_source"].extend([source] * n)
        self.lineage["_location"].extend([location] * n)
        self.lineage["_record_ref"].extend(refs)
        self.lineage["_content_hash"].extend(content_hashes if isinstance(content_hashes, list) else [content_hashes] * n)

    def __len__(self) -> int:
        return len(self.lineage["_source"])

    def arrow(self, ingested_at: dt.datetime, run_id: str) -> pa.Table:
        n = len(self)
        arrays = {c: pa.array(v, type=pa.string()) for c, v in zip(self.columns, self.values)}
        arrays.update({c: pa.array(v, type=pa.string()) for c, v in self.lineage.items()})
        arrays["_ingested_at"] = pa.array([ingested_at] * n, type=pa.timestamp("us"))
        arrays["_run_id"] = pa.array([run_id] * n, type=pa.string())
        return pa.table(arrays)


def insert_arrow(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
    if data.num_rows == 0:
        return
    con.register("_insert_tbl", data)
    try:
        cols = ", ".join(f'"{c}"' for c in data.column_names)
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _insert_tbl")
    finally:
        con.unregister("_insert_tbl")


def insert_records(con: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...], records: list[tuple]) -> None:
    """Insert a list of tuples (bookkeeping rows, quarantine rows) in one statement."""
    if not records:
        return
    insert_arrow(con, table, pa.table({c: pa.array(list(v)) for c, v in zip(columns, zip(*records))}))


def quarantine_rows(source: str, location: str, rejects: list[Reject], rejected_at: dt.datetime, run_id: str) -> list[tuple]:
    return [(source, location, r.record_ref, r.raw_record, r.reason, rejected_at, run_id) for r in rejects]


def quarantine(con, source: str, location: str, rejects: list[Reject], rejected_at: dt.datetime, run_id: str) -> None:
    insert_records(con, "quarantine.rejected_records", QUARANTINE_COLUMNS,
                   quarantine_rows(source, location, rejects, rejected_at, run_id))


def loaded_hashes(con: duckdb.DuckDBPyConnection, family: str) -> dict[str, str]:
    """location -> content hash of every file version of a family in the warehouse."""
    return dict(con.execute(
        "SELECT location, content_hash FROM meta.loaded_files WHERE family = ?", [family]
    ).fetchall())


def forget_files(con: duckdb.DuckDBPyConnection, family: str, locations: list[str], tables: list[str]) -> None:
    """Remove what earlier versions of files loaded (corrected files replace them)."""
    if not locations:
        return
    con.register("_forget", pa.table({"location": pa.array(locations, type=pa.string())}))
    try:
        for table in tables:
            con.execute(f"DELETE FROM {table} WHERE _location IN (SELECT location FROM _forget)")
        con.execute("DELETE FROM quarantine.rejected_records WHERE location IN (SELECT location FROM _forget)")
        con.execute("DELETE FROM meta.loaded_files WHERE family = ? AND location IN (SELECT location FROM _forget)", [family])
    finally:
        con.unregister("_forget")
