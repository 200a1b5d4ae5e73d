"""Source freshness: when each source last delivered, how old its newest record is, and whether that meets its SLA.

Plain logic over the warehouse (no Dagster): the `gold/source_freshness` asset and the CLI summary call it.

- `last_successful_load`: the newest load that took data from the source: a file version loaded without a
  file-level error (`meta.loaded_files`), or a shop extract (`meta.extract_log`; an extract that found no
  changed rows still proves the shop is current, since it is read incrementally by `updated_at`).
- `newest_record_at`: the newest business timestamp in the raw data (UTC), for information; a timestamp more
  than `FUTURE_TOLERANCE` after the measurement (a `signed_up_at` of 2099) is ignored, so the record lag is never
  negative because of one mistyped date.
- `lag` = measured_at - last_successful_load drives the status: fresh below the warn window, warning from it,
  failed from the fail window, never_loaded without any load.
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
import pandas as pd

from customer_pipeline.warehouse import table_exists, transaction

FRESH, WARNING, FAILED, NEVER_LOADED = "fresh", "warning", "failed", "never_loaded"
TABLE = "gold.source_freshness"
HISTORY_TABLE = "gold.source_freshness_history"
COLUMNS = (
    "source", "last_successful_load", "newest_record_at", "lag", "lag_seconds", "record_lag_seconds",
    "sla_warn", "sla_fail", "status", "measured_at",
)

# A business timestamp later than the measurement by more than this is a data error, not the newest record.
FUTURE_TOLERANCE = dt.timedelta(days=1)

# The business timestamp columns per source: (raw table, column).
BUSINESS_TIMESTAMPS: dict[str, tuple[tuple[str, str], ...]] = {
    "pos": (("raw.pos_loyalty_signups", "signed_up_at"), ("raw.pos_transactions", "sold_at")),
    "shop": (("raw.shop_customers", "updated_at"), ("raw.shop_addresses", "updated_at"),
             ("raw.shop_orders", "updated_at")),
    "call_center": (("raw.call_center_contacts", "started_at"),),
    "app": (("raw.app_events", "timestamp"),),
}


@dataclass(frozen=True)
class Sla:
    warn: dt.timedelta
    fail: dt.timedelta


@dataclass(frozen=True)
class SourceFreshness:
    source: str
    last_successful_load: dt.datetime | None
    newest_record_at: dt.datetime | None
    sla: Sla
    measured_at: dt.datetime

    @property
    def lag(self) -> dt.timedelta | None:
        return None if self.last_successful_load is None else self.measured_at - self.last_successful_load

    @property
    def record_lag(self) -> dt.timedelta | None:
        return None if self.newest_record_at is None else self.measured_at - self.newest_record_at

    @property
    def status(self) -> str:
        return classify(self.lag, self.sla)

    def as_row(self) -> dict:
        return {
            "source": self.source,
            "last_successful_load": self.last_successful_load,
            "newest_record_at": self.newest_record_at,
            "lag": self.lag,
            "lag_seconds": None if self.lag is None else self.lag.total_seconds(),
            "record_lag_seconds": None if self.record_lag is None else self.record_lag.total_seconds(),
            "sla_warn": self.sla.warn,
            "sla_fail": self.sla.fail,
            "status": self.status,
            "measured_at": self.measured_at,
        }


def classify(lag: dt.timedelta | None, sla: Sla) -> str:
    """fresh / warning / failed by the SLA windows; never_loaded when there is no load at all."""
    if lag is None:
        return NEVER_LOADED
    if lag >= sla.fail:
        return FAILED
    if lag >= sla.warn:
        return WARNING
    return FRESH


def last_loads(con: duckdb.DuckDBPyConnection) -> dict[str, dt.datetime]:
    """Newest successful load per source (naive UTC, as the loaders write `loaded_at`)."""
    out: dict[str, dt.datetime] = {}
    if table_exists(con, "meta.loaded_files"):
        for source, loaded_at in con.execute(
            "SELECT source, max(loaded_at) FROM meta.loaded_files WHERE file_error IS NULL GROUP BY source"
        ).fetchall():
            out[source] = loaded_at
    if table_exists(con, "meta.extract_log"):
        for source, loaded_at in con.execute(
            "SELECT source, max(loaded_at) FROM meta.extract_log GROUP BY source"
        ).fetchall():
            out[source] = max(filter(None, (out.get(source), loaded_at)))
    return out


def newest_records(con: duckdb.DuckDBPyConnection, now: dt.datetime | None = None) -> dict[str, dt.datetime | None]:
    """Newest business timestamp per source, offsets applied and naive timestamps read as UTC; timestamps
    beyond `now` + `FUTURE_TOLERANCE` (naive UTC; default: the current time) are left out."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    limit = (now + FUTURE_TOLERANCE).isoformat(sep=" ")
    previous = con.execute("SELECT current_setting('TimeZone')").fetchall()[0][0]
    con.execute("SET TimeZone = 'UTC'")
    try:
        out: dict[str, dt.datetime | None] = {}
        for source, columns in BUSINESS_TIMESTAMPS.items():
            parts = [
                f'SELECT max(ts) AS ts FROM (SELECT timezone(\'UTC\', try_cast("{col}" AS TIMESTAMPTZ)) AS ts '
                f"FROM {table}) WHERE ts <= TIMESTAMP '{limit}'"
                for table, col in columns
                if table_exists(con, table)
            ]
            out[source] = con.execute(f"SELECT max(ts) FROM ({' UNION ALL '.join(parts)})").fetchall()[0][0] if parts else None
        return out
    finally:
        con.execute(f"SET TimeZone = '{previous}'")


def measure(
    con: duckdb.DuckDBPyConnection, slas: Mapping[str, Sla], now: dt.datetime | None = None
) -> list[SourceFreshness]:
    """One measurement per source in `slas`, at `now` (naive UTC; default: the current time)."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    loads, newest = last_loads(con), newest_records(con, now)
    return [SourceFreshness(s, loads.get(s), newest.get(s), sla, now) for s, sla in slas.items()]


def frame(measurements: list[SourceFreshness]) -> pd.DataFrame:
    df = pd.DataFrame([m.as_row() for m in measurements], columns=list(COLUMNS))
    for col in ("last_successful_load", "newest_record_at", "measured_at"):
        df[col] = pd.to_datetime(df[col])
    for col in ("lag", "sla_warn", "sla_fail"):
        df[col] = pd.to_timedelta(df[col])
    df["lag_seconds"] = df["lag_seconds"].astype("float64")
    df["record_lag_seconds"] = df["record_lag_seconds"].astype("float64")
    return df


def write(con: duckdb.DuckDBPyConnection, measurements: list[SourceFreshness]) -> pd.DataFrame:
    """Replace gold.source_freshness and append to its history, in one transaction (readers see old or new)."""
    df = frame(measurements)
    con.register("_freshness_df", df)
    try:
        with transaction(con):
            con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS SELECT * FROM _freshness_df")
            con.execute(f"CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} AS SELECT * FROM _freshness_df LIMIT 0")
            con.execute(f"INSERT INTO {HISTORY_TABLE} SELECT * FROM _freshness_df")
    finally:
        con.unregister("_freshness_df")
    return df


def _age(seconds: float | None) -> str:
    if seconds is None or pd.isna(seconds):
        return "-"
    seconds = int(seconds)
    if abs(seconds) < 3600:
        return f"{seconds // 60}m"
    if abs(seconds) < 172800:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d"


def freshness_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The freshness section of the run summary, read from gold.source_freshness (empty when not built)."""
    if not table_exists(con, TABLE):
        return []
    rows = con.execute(
        f"""SELECT source, status, lag_seconds, record_lag_seconds, epoch(sla_warn), epoch(sla_fail),
        last_successful_load, measured_at FROM {TABLE} ORDER BY source"""
    ).fetchall()
    lines = ["", "Source freshness", f"  {'source':12s} {'status':12s} {'since load':>10s} {'newest rec':>10s} {'warn/fail':>11s}  last load"]
    for source, status, lag, record_lag, warn, fail, last_load, _ in rows:
        sla = f"{_age(warn)}/{_age(fail)}"
        loaded = last_load.strftime("%Y-%m-%d %H:%M") if last_load else "never"
        lines.append(f"  {source:12s} {status:12s} {_age(lag):>10s} {_age(record_lag):>10s} {sla:>11s}  {loaded}")
    if rows:
        lines.append(f"  (measured {rows[0][7]:%Y-%m-%d %H:%M} UTC; newest rec = age of the newest business timestamp)")
    return lines
