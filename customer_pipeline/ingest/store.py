"""Warehouse tables of the raw layer: creation, quarantine and load bookkeeping (DuckDB SQL)."""

import datetime as dt

import duckdb
import pandas as pd

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


def ensure_meta(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in (QUARANTINE_DDL, LOADED_FILES_DDL, EXTRACT_LOG_DDL, WATERMARKS_DDL):
        con.execute(ddl)


def ensure_raw_table(con: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...]) -> None:
    cols = ", ".join(f'"{c}" VARCHAR' for c in columns)
    con.execute(
        f"CREATE TABLE IF NOT EXISTS raw.{table} ({cols}, _source VARCHAR, _location VARCHAR, "
        "_record_ref VARCHAR, _content_hash VARCHAR, _ingested_at TIMESTAMP, _run_id VARCHAR)"
    )


def rows_frame(
    columns: tuple[str, ...], rows: list[tuple], refs: list[str], *, source: str, location: str,
    content_hashes: list[str] | str, ingested_at: dt.datetime, run_id: str,
) -> pd.DataFrame:
    """Rows of one load as a frame of text columns plus lineage."""
    df = pd.DataFrame.from_records(rows, columns=list(columns)).astype(object)
    df["_source"] = source
    df["_location"] = location
    df["_record_ref"] = refs
    df["_content_hash"] = content_hashes
    df["_ingested_at"] = ingested_at
    df["_run_id"] = run_id
    return df


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, df: pd.DataFrame) -> None:
    if df.empty:
        return
    con.register("_insert_df", df)
    try:
        cols = ", ".join(f'"{c}"' for c in df.columns)
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _insert_df")
    finally:
        con.unregister("_insert_df")


def quarantine(
    con: duckdb.DuckDBPyConnection, source: str, location: str, rejects: list[Reject],
    rejected_at: dt.datetime, run_id: str,
) -> None:
    if not rejects:
        return
    df = pd.DataFrame(
        {
            "source": source,
            "location": location,
            "record_ref": [r.record_ref for r in rejects],
            "raw_record": [r.raw_record for r in rejects],
            "reason": [r.reason for r in rejects],
            "rejected_at": rejected_at,
            "run_id": run_id,
        }
    )
    insert_frame(con, "quarantine.rejected_records", df)


def loaded_hash(con: duckdb.DuckDBPyConnection, family: str, location: str) -> str | None:
    rows = con.execute(
        "SELECT content_hash FROM meta.loaded_files WHERE family = ? AND location = ?", [family, location]
    ).fetchall()
    return rows[0][0] if rows else None


def forget_file(con: duckdb.DuckDBPyConnection, family: str, location: str, tables: list[str]) -> None:
    """Remove what an earlier version of a file loaded (a corrected file replaces it)."""
    for table in tables:
        con.execute(f"DELETE FROM {table} WHERE _location = ?", [location])
    con.execute("DELETE FROM quarantine.rejected_records WHERE location = ?", [location])
    con.execute("DELETE FROM meta.loaded_files WHERE family = ? AND location = ?", [family, location])


def record_file(con: duckdb.DuckDBPyConnection, **values) -> None:
    con.execute(
        "INSERT INTO meta.loaded_files (source, family, location, content_hash, rows_read, rows_loaded, "
        "rows_duplicate, rows_quarantined, file_error, loaded_at, run_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        [
            values["source"], values["family"], values["location"], values["content_hash"],
            values["rows_read"], values["rows_loaded"], values.get("rows_duplicate", 0),
            values["rows_quarantined"], values.get("file_error"), values["loaded_at"], values["run_id"],
        ],
    )


