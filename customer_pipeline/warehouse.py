"""The DuckDB warehouse: one short-lived connection per unit of work (DuckDB allows one writing process)."""

import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd

SCHEMAS = ("raw", "quarantine", "staging", "identity", "gold", "meta")


@contextlib.contextmanager
def connect(path: str | Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse file, creating its folder and schemas, and always close it."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        if not read_only:
            for schema in SCHEMAS:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        yield con
    finally:
        con.close()


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    rows = con.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchall()
    return bool(rows)


def read_df(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def replace_table(con: duckdb.DuckDBPyConnection, qualified: str, df: pd.DataFrame) -> None:
    """Swap a table's content atomically (one transaction: readers see old or new, never half)."""
    con.register("_replace_df", df)
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(f"CREATE OR REPLACE TABLE {qualified} AS SELECT * FROM _replace_df")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_replace_df")
