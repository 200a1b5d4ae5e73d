"""Incremental extraction of the shop database (any SQLAlchemy URL) by `updated_at` watermark.

Rows whose `updated_at` is at or after the stored watermark less `OVERLAP` are read again and upserted
by primary key; a row whose content is unchanged is left alone, so re-running on unchanged data changes
nothing. Timestamps are compared as timestamps (UTC, one text form for the watermark), and the
watermark never moves past the present (see docs/raw-layer.md, "The shop watermark").
"""

import datetime as dt
import decimal
import hashlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import sqlalchemy as sa

from customer_pipeline.erasure.arrival import screen_arrivals
from customer_pipeline.ingest import store
from customer_pipeline.ingest.parsing import Reject, parse_timestamp
from customer_pipeline.ingest.workers import worker_count
from customer_pipeline.warehouse import table_exists, transaction

# A row dated further ahead than this is a wrong clock or a placeholder date: it is loaded and flagged
# (check `no_rows_dated_in_future`), and never sets the watermark.
FUTURE_TOLERANCE = dt.timedelta(days=1)
# Each extract re-reads this far behind the watermark: a transaction that stamped its rows before the
# last extract but committed after it would otherwise be skipped for good. Re-read rows are unchanged,
# so they are left alone.
OVERLAP = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class ShopTable:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    watermark: str | None  # column driving incremental reads; None = follows orders
    ints: tuple[str, ...] = ()
    timestamps: tuple[str, ...] = ()


SHOP_TABLES = {
    t.name: t
    for t in (
        ShopTable(
            "customers",
            ("id", "email", "first_name", "last_name", "phone", "birth_date", "gender",
             "marketing_opt_in", "created_at", "updated_at", "deleted_at"),
            ("id",), "updated_at", ints=("id",), timestamps=("updated_at",),
        ),
        ShopTable(
            "addresses",
            ("id", "customer_id", "kind", "line1", "line2", "city", "postcode", "region", "country", "updated_at"),
            ("id",), "updated_at", ints=("id",), timestamps=("updated_at",),
        ),
        ShopTable(
            "orders",
            ("id", "customer_id", "guest_email", "guest_first_name", "guest_last_name", "guest_phone",
             "status", "placed_at", "updated_at", "total", "currency", "ship_line1", "ship_city",
             "ship_postcode", "ship_country"),
            ("id",), "updated_at", ints=("id",), timestamps=("updated_at",),
        ),
        ShopTable(
            "order_items", ("order_id", "line_no", "sku", "product_name", "category", "qty", "unit_price"),
            ("order_id", "line_no"), None, ints=("order_id", "line_no"),
        ),
        ShopTable(
            "email_events", ("id", "email", "kind", "occurred_at"),
            ("id",), "occurred_at", ints=("id",), timestamps=("occurred_at",),
        ),
    )
}


class SourceError(RuntimeError):
    """The shop database cannot be read, and retrying will not change that (a malformed URL, bad
    credentials, a database, table or column that is not there)."""


class SourceUnavailable(SourceError):
    """The shop database cannot be reached for now (refused, timed out, connection lost): worth a retry."""


# Bare schemes SQLAlchemy 2.1 maps to drivers this project does not ship (psycopg 3, mysqlclient).
_DRIVERS = {
    "postgresql": "postgresql+psycopg2", "postgres": "postgresql+psycopg2",
    "mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql",
}
# Driver messages no retry will change: credentials refused, a database, table or column not there.
_PERMANENT = (
    "access denied", "command denied", "authentication failed", "no pg_hba.conf entry", "permission denied",
    "does not exist", "doesn't exist", "unknown database", "no such table", "no such column", "unknown column",
    "unable to open database file",
)


def sqlalchemy_url(url: str) -> str:
    """The URL with a driver this project installs (psycopg2, pymysql) where it names none."""
    scheme, sep, rest = url.partition("://")
    return f"{_DRIVERS.get(scheme.lower(), scheme)}{sep}{rest}" if sep else url


def _where(url: str) -> str:
    return url.split("@")[-1]  # host and database, never the credentials


def _line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else exc.__class__.__name__


def shop_engine(url: str) -> sa.Engine:
    """An engine for the shop URL; a URL no installed driver can read is a SourceError of one line."""
    try:
        return sa.create_engine(sqlalchemy_url(url))
    except (sa.exc.ArgumentError, ValueError, ImportError) as exc:  # malformed, unknown dialect, driver missing
        raise SourceError(f"SHOP_DB_URL is not a database URL the pipeline can read ({_where(url)}): {_line(exc)}") from exc


def _failure(exc: sa.exc.SQLAlchemyError, url: str) -> SourceError:
    """A failed connect or read as one line: permanent when retrying cannot help, else SourceUnavailable."""
    line = _line(getattr(exc, "orig", None) or exc)
    if isinstance(exc, (sa.exc.ProgrammingError, sa.exc.ArgumentError)) or any(w in line.lower() for w in _PERMANENT):
        return SourceError(f"shop database cannot be read ({_where(url)}): {line}")
    return SourceUnavailable(f"shop database unreachable ({_where(url)}): {line}")


def _text(at: dt.datetime | None) -> str | None:
    """The watermark's one text form: `YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC."""
    return None if at is None else at.isoformat(sep=" ")


def _as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, decimal.Decimal, int, float)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def _row_texts(row) -> tuple:
    """`_as_text` of every value; text, null and int (nearly every value) without the type chain."""
    return tuple([
        v if v is None or v.__class__ is str else str(v) if v.__class__ is int else _as_text(v)
        for v in row
    ])


def _problem(table: ShopTable, row: dict) -> str | None:
    for col in table.ints:
        value = row.get(col)
        try:
            number = int(value)
        except (TypeError, ValueError):
            return f"field '{col}' is not an integer: {str(value)[:40]!r}"
        if not -(2**63) <= number < 2**63:  # ids become source keys and BIGINT columns
            return f"field '{col}' is out of the 64-bit integer range"
    for col in table.timestamps:
        if parse_timestamp(row.get(col)) is None:
            return f"field '{col}' is not a timestamp: {row.get(col)!r}"
    return None


def _row_hash(values: tuple) -> str:
    return hashlib.sha256("\x1f".join("\x00" if v is None else v for v in values).encode()).hexdigest()


def _reflect(table: ShopTable, engine: sa.Engine, meta: sa.MetaData) -> sa.Table:
    try:
        t = sa.Table(table.name, meta, autoload_with=engine)
    except sa.exc.NoSuchTableError as exc:
        raise SourceError(f"shop database has no table '{table.name}'") from exc
    missing = [c for c in table.columns if c not in t.c]
    if missing:
        raise SourceError(f"shop table '{table.name}' lacks contract columns {missing}")
    return t


def check_source(shop_url: str) -> None:
    """Raise SourceError (one line) unless the shop database answers and has every contract table and column."""
    engine = shop_engine(shop_url)
    try:
        meta = sa.MetaData()
        for table in SHOP_TABLES.values():
            _reflect(table, engine, meta)
    except sa.exc.SQLAlchemyError as exc:
        raise _failure(exc, shop_url) from exc
    finally:
        engine.dispose()


def _at_or_after(col, since: dt.datetime, dialect: str):
    """`col >= since`, compared as timestamps."""
    if dialect == "sqlite":
        # SQLite keeps the text the application wrote ('T' or space, perhaps an offset): datetime() reads
        # each of these and gives UTC in one form, to the second (so at most a second more is read). It reads
        # every row, so a plain text bound a day earlier (any offset) comes first: an index on the column
        # serves it (1M person records: 0.1 s -> 1 ms per table), and text that datetime() cannot read is
        # left out by both.
        day_before = (since - dt.timedelta(days=1)).strftime("%Y-%m-%d")
        return sa.and_(col >= day_before, sa.func.datetime(col) >= since.strftime("%Y-%m-%d %H:%M:%S"))
    # a zone-aware column (timestamptz) gets a UTC bound, whatever the session's time zone
    return col >= (since.replace(tzinfo=dt.UTC) if getattr(col.type, "timezone", False) else since)


def _query(table: ShopTable, engine: sa.Engine, since: dt.datetime | None, orders_since: dt.datetime | None):
    meta = sa.MetaData()
    t = _reflect(table, engine, meta)
    # no driver-side type conversion: a malformed value must reach quarantine, not crash the read
    q = sa.select(*[sa.type_coerce(t.c[c], sa.String).label(c) for c in table.columns])
    if table.watermark and since is not None:
        q = q.where(_at_or_after(t.c[table.watermark], since, engine.dialect.name))
    if table.name == "order_items" and orders_since is not None:
        orders = sa.Table("orders", meta, autoload_with=engine)
        changed = sa.select(orders.c.id).where(_at_or_after(orders.c.updated_at, orders_since, engine.dialect.name))
        q = q.where(t.c.order_id.in_(changed))
    return q


@dataclass
class ExtractStats:
    table: str
    watermark_from: str | None
    watermark_to: str | None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_unchanged: int = 0
    rows_quarantined: int = 0
    rows_in_future: int = 0  # loaded, dated beyond now + FUTURE_TOLERANCE
    rows_erased: int = 0  # rows of an erased person, suppressed on arrival


def _get_watermark(con, table: str, now: dt.datetime) -> dt.datetime | None:
    """The stored watermark. One beyond the present was left by an earlier version that let a future-dated
    row set it: it is dropped, so this extract reads the table whole once (unchanged rows are left alone)."""
    rows = con.execute(
        "SELECT watermark FROM meta.watermarks WHERE source = 'shop' AND table_name = ?", [table]
    ).fetchall()
    mark = parse_timestamp(rows[0][0]) if rows else None
    return mark if mark is not None and mark <= now else None


def rows_dated_in_future(con: duckdb.DuckDBPyConnection, table: str, now: dt.datetime | None = None) -> list[str]:
    """Keys of the rows of raw.shop_<table> dated beyond now + FUTURE_TOLERANCE (by their watermark column)."""
    col = SHOP_TABLES[table].watermark
    if col is None or not table_exists(con, f"raw.shop_{table}"):
        return []
    limit = (now or dt.datetime.now(dt.UTC).replace(tzinfo=None)) + FUTURE_TOLERANCE
    # the date prefix narrows the scan in SQL (an offset moves the date by a day at most); parsing decides
    rows = con.execute(
        f'SELECT _record_ref, "{col}" FROM raw.shop_{table} WHERE left("{col}", 10) >= ? '
        "ORDER BY length(_record_ref), _record_ref",
        [(limit - dt.timedelta(days=1)).date().isoformat()],
    ).fetchall()
    return [ref for ref, at in rows if (parsed := parse_timestamp(at)) is not None and parsed > limit]


# rows converted per chunk while reading (bounds the Python objects held for a large table)
_READ_CHUNK = 100_000
# rows in `orders` (the incremental part) from which the tables are read in worker processes
PARALLEL_MIN_ROWS = 100_000


@dataclass
class _Extracted:
    """One table as read: its good rows as Arrow (lineage included), rejects, rows read, the newest
    watermark value not in the future, and how many rows were dated in the future."""

    data: pa.Table
    rejects: list[Reject]
    rows_read: int
    newest: dt.datetime | None
    in_future: int


def _read_table(shop_url: str, name: str, since: dict, now: dt.datetime, run_id: str) -> _Extracted:
    """Read one shop table incrementally and check its rows (runs in process or in a worker)."""
    table = SHOP_TABLES[name]
    location = f"shop:{table.name}"
    mark_at = table.columns.index(table.watermark) if table.watermark else None
    future_limit = now + FUTURE_TOLERANCE
    engine = shop_engine(shop_url)
    parts, rejects, rows_read, newest, in_future = [], [], 0, None, 0
    try:
        with engine.connect() as conn:
            q = _query(table, engine, since[table.name], since["orders"])
            for chunk in conn.execution_options(stream_results=True).execute(q).partitions(_READ_CHUNK):
                rows = [_row_texts(r) for r in chunk]
                rows_read += len(rows)
                good, refs = [], []
                for values in rows:
                    row = dict(zip(table.columns, values))
                    ref = ":".join(str(row.get(k)) for k in table.key)
                    problem = _problem(table, row)
                    if problem:
                        rejects.append(Reject(ref, repr(row), problem))
                        continue
                    good.append(values)
                    refs.append(ref)
                    if mark_at is not None:
                        at = parse_timestamp(values[mark_at])  # checked by _problem: never None here
                        if at > future_limit:
                            in_future += 1
                        elif newest is None or at > newest:
                            newest = at
                batch = store.RowBatch(table.columns)
                batch.add(good, refs, "shop", location, [_row_hash(v) for v in good])
                parts.append(batch.arrow(now, run_id))
    except sa.exc.SQLAlchemyError as exc:
        raise _failure(exc, shop_url) from exc
    finally:
        engine.dispose()
    data = pa.concat_tables(parts) if parts else store.RowBatch(table.columns).arrow(now, run_id)
    return _Extracted(data, rejects, rows_read, newest, in_future)


def _incremental_orders(engine: sa.Engine, orders_since: dt.datetime | None) -> int:
    """Rows of `orders` the extract will read: the measure of its size (0 when it cannot be told;
    the read itself then reports what is wrong)."""
    try:
        orders = sa.Table("orders", sa.MetaData(), autoload_with=engine)
        q = sa.select(sa.func.count()).select_from(orders)
        if orders_since is not None:
            q = q.where(_at_or_after(orders.c.updated_at, orders_since, engine.dialect.name))
        with engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)
    except Exception:  # noqa: BLE001 - only sizes the extract
        return 0


def extract_shop(
    con: duckdb.DuckDBPyConnection, shop_url: str, run_id: str, now: dt.datetime | None = None
) -> dict[str, ExtractStats]:
    """Read every shop table incrementally into raw.shop_<table>; returns stats per table.

    Tables are read one at a time (a large extract reads them in worker processes, the next while
    the current one is written) and upserted in order within one transaction."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    check_source(shop_url)  # an unusable URL, a missing table or column fails here, before anything is read
    store.ensure_meta(con)
    marks = {name: _get_watermark(con, name, now) for name in SHOP_TABLES}
    since = {name: None if mark is None else mark - OVERLAP for name, mark in marks.items()}
    engine = shop_engine(shop_url)
    try:
        workers = min(2, worker_count())
        if workers >= 2 and _incremental_orders(engine, since["orders"]) < PARALLEL_MIN_ROWS:
            workers = 0
    finally:
        engine.dispose()
    results = {}
    pool = (ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
            if workers >= 2 else None)
    try:
        if pool is None:
            reads = (_read_table(shop_url, name, since, now, run_id) for name in SHOP_TABLES)
        else:
            futures = [pool.submit(_read_table, shop_url, name, since, now, run_id) for name in SHOP_TABLES]
            reads = (f.result() for f in futures)
        with transaction(con):
            for table, extracted in zip(SHOP_TABLES.values(), reads):
                results[table.name] = _upsert(con, table, extracted, marks, now, run_id)
                del extracted
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return results


def _upsert(con, table: ShopTable, extracted: _Extracted, marks: dict, now, run_id) -> ExtractStats:
    location = f"shop:{table.name}"
    raw_table = f"raw.shop_{table.name}"
    store.ensure_raw_table(con, f"shop_{table.name}", table.columns)
    mark = marks[table.name]
    stats = ExtractStats(table.name, _text(mark), _text(mark), rows_read=extracted.rows_read,
                         rows_in_future=extracted.in_future)
    # rows of a person erased earlier are not stored: counted as erased (docs/erasure.md)
    df, stats.rows_erased = screen_arrivals(con, f"shop_{table.name}", extracted.data, location, None, run_id)
    rejects = extracted.rejects
    key_match = " AND ".join(f'r."{k}" = n."{k}"' for k in table.key)
    con.register("_incoming", df)
    try:
        if table.name == "order_items" and df.num_rows:
            # an order's lines are replaced as a whole when the order changed
            con.execute(
                f"""DELETE FROM {raw_table} r WHERE r.order_id IN (SELECT DISTINCT order_id FROM _incoming)
                AND NOT EXISTS (SELECT 1 FROM _incoming n WHERE {key_match} AND n._content_hash = r._content_hash)"""
            )
        else:
            con.execute(
                f"DELETE FROM {raw_table} r USING _incoming n WHERE {key_match} AND r._content_hash <> n._content_hash"
            )
        unchanged = con.execute(
            f"SELECT count(*) FROM _incoming n WHERE EXISTS (SELECT 1 FROM {raw_table} r WHERE {key_match})"
        ).fetchall()[0][0]
        cols = ", ".join(f'"{c}"' for c in df.column_names)
        con.execute(
            f"INSERT INTO {raw_table} ({cols}) SELECT {cols} FROM _incoming n "
            f"WHERE NOT EXISTS (SELECT 1 FROM {raw_table} r WHERE {key_match})"
        )
    finally:
        con.unregister("_incoming")
    # the same bad row read again is not quarantined twice
    new_rejects = [
        r for r in rejects
        if not con.execute(
            "SELECT 1 FROM quarantine.rejected_records WHERE location = ? AND record_ref = ? AND raw_record = ?",
            [location, r.record_ref, r.raw_record],
        ).fetchall()
    ]
    store.quarantine(con, "shop", location, new_rejects, now, run_id)
    stats.rows_unchanged = int(unchanged)
    stats.rows_loaded = df.num_rows - stats.rows_unchanged
    stats.rows_quarantined = len(rejects)
    if table.watermark and extracted.newest is not None:
        # never past the present: a row stamped a little ahead (a clock running fast) is read again next time
        newest = min(extracted.newest, now)
        if mark is None or newest > mark:
            stats.watermark_to = _text(newest)
            con.execute(
                "INSERT OR REPLACE INTO meta.watermarks VALUES ('shop', ?, ?, ?)", [table.name, stats.watermark_to, now]
            )
    con.execute(
        "INSERT INTO meta.extract_log VALUES ('shop', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [location, stats.watermark_from, stats.watermark_to, stats.rows_read, stats.rows_loaded,
         stats.rows_unchanged, stats.rows_quarantined, now, run_id],
    )
    return stats


