"""The DuckDB warehouse: one short-lived connection per unit of work (DuckDB allows one writing process)."""

import contextlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd

SCHEMAS = ("raw", "quarantine", "staging", "identity", "gold", "meta")


def lock_wait_seconds() -> float:
    """How long to wait for another process's lock on the file (`CUSTOMER_PIPELINE_LOCK_WAIT_SECONDS`)."""
    value = os.environ.get("CUSTOMER_PIPELINE_LOCK_WAIT_SECONDS", "").strip()
    return float(value) if value else 600.0


def _open(path: Path, read_only: bool, wait: float) -> duckdb.DuckDBPyConnection:
    """Open the file; while another process holds its lock, wait with backoff instead of failing."""
    deadline = time.monotonic() + wait
    delay = 0.2
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


DEFAULT_MEMORY_LIMIT = "2GB"
MEMORY_LIMIT_VARIABLE = "CUSTOMER_PIPELINE_DUCKDB_MEMORY_LIMIT"


def memory_limit(variable: str = MEMORY_LIMIT_VARIABLE, default: str = DEFAULT_MEMORY_LIMIT) -> str | None:
    """DuckDB's memory limit on warehouse connections (`CUSTOMER_PIPELINE_DUCKDB_MEMORY_LIMIT`, default 2GB;
    `none`: DuckDB's own default, 80% of the machine's memory). Above it DuckDB spills to disk (the
    `.tmp` folder beside the warehouse file). At 1M person records the marts' joins took the run to 7.1 GB
    without it and to 4.7 GB with it, at the same speed (docs/benchmarks.md, 2026-12-07). Splink's own
    sessions have their own (`CUSTOMER_PIPELINE_SPLINK_MEMORY_LIMIT`, default 3GB, `splink_model.duckdb_session`):
    at 2GB scoring spilled and took 142 s instead of 84 s; at 3GB it keeps its speed and the run stays under 4 GiB."""
    value = os.environ.get(variable, "").strip() or default
    if value.lower() == "none":
        return None
    if not _MEMORY.fullmatch(value):
        raise ValueError(f"{variable}={value!r}: expected a size such as 2GB, 1.5GB, 500MiB, or none")
    return value


_MEMORY = re.compile(r"\d+(\.\d+)?\s*([KMGT]i?B|B)", re.IGNORECASE)


@contextlib.contextmanager
def connect(
    path: str | Path, read_only: bool = False, wait: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse file (waiting for a writer elsewhere to finish), create schemas, always close."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = _open(path, read_only, lock_wait_seconds() if wait is None else wait)
    try:
        limit = memory_limit()
        if limit:
            con.execute(f"SET memory_limit = '{limit}'")
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
    """A query's result as pandas with the dtypes `.df()` gives, text handed over through Arrow.

    `.df()` converts text cell by cell (976k person records: 9.1 s; this: 2.4 s); Arrow gives the same
    dtype for text (pandas `str`), so only the other columns go through `.df()`. A text column with no value
    at all is what `.df()` makes of it: object, None. `test_warehouse.py` compares the two."""
    import pyarrow as pa

    rel = con.sql(sql, params=params or None)
    table = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
    if not table.num_rows:  # no rows to convert; `.df()` types an empty text column by its statistics
        return rel.df()
    text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    frame = table.select(text).to_pandas() if text else pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    others = con.from_arrow(table.drop_columns(text)).df() if len(text) < table.num_columns else None

    def column(name: str) -> pd.Series:
        if name not in text:
            return others[name]
        if table.column(name).null_count == table.num_rows:
            return pd.Series([None] * table.num_rows, dtype=object, name=name)
        return frame[name]

    return pd.DataFrame({n: column(n) for n in table.column_names})


def isin(values: pd.Series, wanted) -> pd.Series:
    """`values.isin(wanted)`, fast for the Arrow-backed text `read_df` gives too.

    pandas 3's own test on Arrow text makes one Arrow scalar of each wanted value (976k record ids: 4.5-5 s);
    here the wanted values become one Arrow array and Arrow's `is_in` answers (0.4-0.7 s). Wanted values
    that are not all text (a null among them, numbers) go to pandas as before."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(values.array, pd.arrays.ArrowStringArray):
        return values.isin(wanted)

    def arrow(text: pd.arrays.ArrowStringArray) -> pa.Array:
        array = pa.array(text)
        return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array

    if isinstance(wanted, pd.Series | pd.Index) and isinstance(wanted.array, pd.arrays.ArrowStringArray):
        value_set = arrow(wanted.array)
        if value_set.null_count:
            return values.isin(wanted)
    else:
        wanted = list(wanted)
        if not all(isinstance(w, str) for w in wanted):
            return values.isin(wanted)
        value_set = pa.array(wanted, type=pa.large_string())
    data = arrow(values.array)
    found = pc.is_in(data, value_set=value_set.cast(data.type)).fill_null(False)
    return pd.Series(found.to_numpy(zero_copy_only=False), index=values.index, name=values.name, dtype=bool)


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All statements inside land together or not at all (readers see the old or the new state)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def replace_table(con: duckdb.DuckDBPyConnection, qualified: str, df: pd.DataFrame) -> None:
    """Swap a table's content atomically (one transaction: readers see old or new, never half)."""
    con.register("_replace_df", df)
    try:
        with transaction(con):
            con.execute(f"CREATE OR REPLACE TABLE {qualified} AS SELECT * FROM _replace_df")
    finally:
        con.unregister("_replace_df")
