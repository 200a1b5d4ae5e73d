"""Segment sizes over runs: a small, bounded history of gold.customer_rfm's segments (for the chart of its trend)."""

import datetime as dt

import duckdb
import pandas as pd

from customer_pipeline.warehouse import table_exists, transaction

SEGMENT_HISTORY = "meta.rfm_segment_history"
KEEP_RUNS = 100  # older measurements are dropped: a trend, not an archive


def record_segments(con: duckdb.DuckDBPyConnection, measured_at: dt.datetime | None = None) -> int:
    """Append the segment sizes of the current gold.customer_rfm; returns the measurements kept."""
    measured_at = measured_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with transaction(con):
        con.execute("CREATE SCHEMA IF NOT EXISTS meta")
        con.execute(f"""CREATE TABLE IF NOT EXISTS {SEGMENT_HISTORY} (
            measured_at TIMESTAMP, as_of_date DATE, segment VARCHAR, customers BIGINT, revenue_eur DOUBLE)""")
        con.execute(f"""INSERT INTO {SEGMENT_HISTORY}
            SELECT CAST(? AS TIMESTAMP), max(as_of_date), segment, count(*), CAST(sum(monetary_eur) AS DOUBLE)
            FROM gold.customer_rfm GROUP BY segment""", [measured_at])
        con.execute(f"""DELETE FROM {SEGMENT_HISTORY} WHERE measured_at NOT IN (
            SELECT DISTINCT measured_at FROM {SEGMENT_HISTORY} ORDER BY measured_at DESC LIMIT {KEEP_RUNS})""")
    return int(con.execute(f"SELECT count(DISTINCT measured_at) FROM {SEGMENT_HISTORY}").fetchall()[0][0])


def segment_history(con: duckdb.DuckDBPyConnection, runs: int = 20) -> pd.DataFrame:
    """The newest `runs` measurements: measured_at, segment, customers, revenue_eur (none before the first)."""
    if not table_exists(con, SEGMENT_HISTORY):
        return pd.DataFrame(columns=["measured_at", "segment", "customers", "revenue_eur"])
    return con.execute(f"""SELECT measured_at, segment, customers, revenue_eur FROM {SEGMENT_HISTORY}
        WHERE measured_at IN (SELECT DISTINCT measured_at FROM {SEGMENT_HISTORY} ORDER BY measured_at DESC LIMIT ?)
        ORDER BY measured_at, segment""", [runs]).df()
