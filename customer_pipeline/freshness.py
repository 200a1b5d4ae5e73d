"""Source freshness: when each source last delivered, how old its newest record is, and whether that meets its SLA.

Plain logic over the warehouse (no Dagster): the `gold/source_freshness` asset and the CLI summary call it.

- `last_successful_load`: the newest load that took data from the source: a file version loaded without a
  file-level error (`meta.loaded_files`), or a shop extract (`meta.extract_log`; an extract that found no
  changed rows still proves the shop is current, since it is read incrementally by `updated_at`).
- `newest_record_at`: the newest business timestamp in the raw data (UTC), for information; a timestamp more
  than `FUTURE_TOLERANCE` after the measurement (a `signed_up_at` of 2099) is ignored, so the record lag is never
  negative because of one mistyped date.
- two lags, each with its own status: the load lag (measured_at - last_successful_load) against the source's
  SLA windows (`load_status`, also `status`): fresh below the warn window, warning from it, failed from the fail
  window, never_loaded without any load; the record lag (measured_at - newest_record_at) against the same
  windows widened by `RECORD_QUIET_ALLOWANCE` (`record_status`; `no_records` without any dated record), since
  business pauses overnight: a source that delivers on time but only old records shows here.
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
import pandas as pd

from customer_pipeline.run_gate import raw_signature
from customer_pipeline.warehouse import table_exists, transaction

FRESH, WARNING, FAILED, NEVER_LOADED, NO_RECORDS = "fresh", "warning", "failed", "never_loaded", "no_records"
TABLE = "gold.source_freshness"
HISTORY_TABLE = "gold.source_freshness_history"
# The first ten are the original columns (kept for BI and docs); `status` is the load status, `lag` the load lag.
COLUMNS = (
    "source", "last_successful_load", "newest_record_at", "lag", "lag_seconds", "record_lag_seconds",
    "sla_warn", "sla_fail", "status", "measured_at",
    "load_status", "load_lag_seconds", "record_status", "record_lag",
    "sla_warn_seconds", "sla_fail_seconds", "record_sla_warn_seconds", "record_sla_fail_seconds",
)
SECONDS_COLUMNS = ("lag_seconds", "record_lag_seconds", "load_lag_seconds", "sla_warn_seconds", "sla_fail_seconds",
                   "record_sla_warn_seconds", "record_sla_fail_seconds")

# The newest record may be this much older than the load SLA allows: sales, sign-ups and contacts pause overnight.
RECORD_QUIET_ALLOWANCE = dt.timedelta(days=1)

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

    @property
    def for_records(self) -> "Sla":
        """The windows the newest record's age is held to."""
        return Sla(self.warn + RECORD_QUIET_ALLOWANCE, self.fail + RECORD_QUIET_ALLOWANCE)


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
        """The load status (the column `status`, also `load_status`)."""
        return classify(self.lag, self.sla)

    @property
    def record_status(self) -> str:
        return NO_RECORDS if self.record_lag is None else classify(self.record_lag, self.sla.for_records)

    def as_row(self) -> dict:
        lag = None if self.lag is None else self.lag.total_seconds()
        records = self.sla.for_records
        return {
            "source": self.source,
            "last_successful_load": self.last_successful_load,
            "newest_record_at": self.newest_record_at,
            "lag": self.lag,
            "lag_seconds": lag,
            "record_lag_seconds": None if self.record_lag is None else self.record_lag.total_seconds(),
            "sla_warn": self.sla.warn,
            "sla_fail": self.sla.fail,
            "status": self.status,
            "measured_at": self.measured_at,
            "load_status": self.status,
            "load_lag_seconds": lag,
            "record_status": self.record_status,
            "record_lag": self.record_lag,
            "sla_warn_seconds": self.sla.warn.total_seconds(),
            "sla_fail_seconds": self.sla.fail.total_seconds(),
            "record_sla_warn_seconds": records.warn.total_seconds(),
            "record_sla_fail_seconds": records.fail.total_seconds(),
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


# per source: the newest business timestamp and the earliest one beyond the tolerance, with the signature of
# the raw tables they were read from (row counts and load logs: customer_pipeline/run_gate.py)
NEWEST_CACHE = "meta.newest_records"
NEWEST_CACHE_DDL = f"""CREATE TABLE IF NOT EXISTS {NEWEST_CACHE} (
    source VARCHAR PRIMARY KEY, signature VARCHAR, newest TIMESTAMP, next_future TIMESTAMP)"""


def newest_records(con: duckdb.DuckDBPyConnection, now: dt.datetime | None = None) -> dict[str, dt.datetime | None]:
    """Newest business timestamp per source, offsets applied and naive timestamps read as UTC; timestamps
    beyond `now` + `FUTURE_TOLERANCE` (naive UTC; default: the current time) are left out.

    Read from the raw tables once per change of them: while a source's tables are unchanged and no
    timestamp left out before has come within the tolerance, the kept figure stands (kept when `con` can
    write)."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    limit = now + FUTURE_TOLERANCE
    kept = ({r[0]: r[1:] for r in con.execute(f"SELECT source, signature, newest, next_future FROM {NEWEST_CACHE}")
             .fetchall()} if table_exists(con, NEWEST_CACHE) else {})
    previous = con.execute("SELECT current_setting('TimeZone')").fetchall()[0][0]
    con.execute("SET TimeZone = 'UTC'")
    fresh: list[tuple] = []
    try:
        out: dict[str, dt.datetime | None] = {}
        for source, columns in BUSINESS_TIMESTAMPS.items():
            present = [(table, col) for table, col in columns if table_exists(con, table)]
            if not present:
                out[source] = None
                continue
            signature = raw_signature(con, [t for t, _ in present])
            signed, newest, next_future = kept.get(source, (None, None, None))
            if signed == signature and (next_future is None or next_future > limit):
                out[source] = newest
                continue
            parts = [f'SELECT timezone(\'UTC\', try_cast("{col}" AS TIMESTAMPTZ)) AS ts FROM {table}'
                     for table, col in present]
            newest, next_future = con.execute(
                f"SELECT max(ts) FILTER (WHERE ts <= ?), min(ts) FILTER (WHERE ts > ?) FROM ({' UNION ALL '.join(parts)})",
                [limit, limit]).fetchall()[0]
            out[source] = newest
            fresh.append((source, signature, newest, next_future))
    finally:
        con.execute(f"SET TimeZone = '{previous}'")
    if fresh:
        try:
            con.execute(NEWEST_CACHE_DDL)
            con.executemany(f"INSERT OR REPLACE INTO {NEWEST_CACHE} VALUES (?, ?, ?, ?)", fresh)
        except (duckdb.InvalidInputException, duckdb.CatalogException, duckdb.PermissionException):
            pass  # a read-only connection (the freshness alert sensor): measured, not kept
    return out


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
    for col in ("lag", "record_lag", "sla_warn", "sla_fail"):
        df[col] = pd.to_timedelta(df[col])
    for col in SECONDS_COLUMNS:
        df[col] = df[col].astype("float64")
    return df


def write(con: duckdb.DuckDBPyConnection, measurements: list[SourceFreshness]) -> pd.DataFrame:
    """Replace gold.source_freshness and append to its history, in one transaction (readers see old or new)."""
    df = frame(measurements)
    con.register("_freshness_df", df)
    try:
        with transaction(con):
            con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS SELECT * FROM _freshness_df")
            con.execute(f"CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} AS SELECT * FROM _freshness_df LIMIT 0")
            # a history written before columns were added gets them (older rows hold NULL there)
            have = {r[0] for r in con.execute(f"DESCRIBE {HISTORY_TABLE}").fetchall()}
            for name, kind, *_ in con.execute("DESCRIBE _freshness_df").fetchall():
                if name not in have:
                    con.execute(f'ALTER TABLE {HISTORY_TABLE} ADD COLUMN "{name}" {kind}')
            con.execute(f"INSERT INTO {HISTORY_TABLE} BY NAME SELECT * FROM _freshness_df")
    finally:
        con.unregister("_freshness_df")
    return df


def duration_text(seconds: float | None) -> str:
    """A duration for people: `45 s`, `2 min 33 s`, `5 h 12 min`, `1 d 2 h` (two units at most; `-` for none)."""
    if seconds is None or pd.isna(seconds):
        return "-"
    sign, seconds = ("-" if seconds < 0 else ""), int(round(abs(float(seconds))))
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    for i, (name, size) in enumerate(units[:-1]):
        if seconds >= size:
            small_name, small_size = units[i + 1]
            big, rest = divmod(seconds, size)
            small = rest // small_size
            return sign + f"{big} {name}" + (f" {small} {small_name}" if small else "")
    return f"{sign}{seconds} s"


def _stamp(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d %H:%M}"


def _display(df: pd.DataFrame) -> pd.DataFrame:
    """The table as people read it: one column per lag with its own status, durations in words, times to the minute
    (also for a table written before the record columns existed)."""
    df = df.copy()
    if "record_status" not in df:
        slas = [Sla(pd.Timedelta(w).to_pytimedelta(), pd.Timedelta(f).to_pytimedelta()).for_records
                for w, f in zip(df["sla_warn"], df["sla_fail"])]
        df["record_status"] = [
            NO_RECORDS if pd.isna(lag) else classify(dt.timedelta(seconds=float(lag)), sla)
            for lag, sla in zip(df["record_lag_seconds"], slas)]
    def seconds(col: str) -> list[float | None]:
        return [None if pd.isna(v) else pd.Timedelta(v).total_seconds() for v in df[col]]

    return pd.DataFrame({
        "source": df["source"],
        "last load (UTC)": df["last_successful_load"].map(_stamp),
        "load lag": df["lag_seconds"].map(duration_text),
        "load status": df["status"],
        "newest record (UTC)": df["newest_record_at"].map(_stamp),
        "record age": df["record_lag_seconds"].map(duration_text),
        "record status": df["record_status"],
        "SLA warn / fail": [f"{duration_text(w)} / {duration_text(f)}"
                            for w, f in zip(seconds("sla_warn"), seconds("sla_fail"))],
    })


def preview_markdown(df: pd.DataFrame) -> str:
    """The UI preview of gold.source_freshness (markdown: no raw timedeltas)."""
    allowance = duration_text(RECORD_QUIET_ALLOWANCE.total_seconds())
    return (_display(df).to_markdown(index=False)
            + f"\n\nThe record status allows {allowance} more than the load SLA: business pauses overnight.")


def freshness_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The freshness section of the run summary, read from gold.source_freshness (empty when not built)."""
    if not table_exists(con, TABLE):
        return []
    df = con.execute(f"SELECT * FROM {TABLE} ORDER BY source").df()
    if df.empty:
        return ["", "Source freshness: no source tracked"]
    shown = _display(df)
    table = shown.drop(columns=["SLA warn / fail"]).rename(
        columns={"last load (UTC)": "last load", "newest record (UTC)": "newest record"})
    table["last load"] = table["last load"].replace("-", "never")
    right = {"load lag", "record age"}
    widths = {c: max(len(c), *(len(str(v)) for v in table[c])) for c in table.columns}

    def row(values) -> str:
        cells = [f"{v:>{widths[c]}}" if c in right else f"{v:<{widths[c]}}" for c, v in zip(table.columns, values)]
        return ("  " + "  ".join(cells)).rstrip()

    lines = ["", f"Source freshness (measured {pd.Timestamp(df['measured_at'].iloc[0]):%Y-%m-%d %H:%M}; times UTC)",
             row(table.columns)]
    lines += [row(values) for values in table.itertuples(index=False)]
    slas = "; ".join(f"{s} {w}" for s, w in zip(shown["source"], shown["SLA warn / fail"]))
    lines.append(f"  SLA warn / fail on the load lag: {slas}")
    lines.append(f"  record status: the same windows plus {duration_text(RECORD_QUIET_ALLOWANCE.total_seconds())} "
                 "(the age of the newest business timestamp; business pauses overnight)")
    return lines
