"""Incremental extraction of the shop database (any SQLAlchemy URL) by `updated_at` watermark.

Rows whose `updated_at` is at or after the stored watermark are read again and upserted by primary
key; a row whose content is unchanged is left alone, so re-running on unchanged data changes nothing.
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

from customer_pipeline.ingest import store
from customer_pipeline.ingest.parsing import Reject, parse_timestamp
from customer_pipeline.warehouse import transaction
from customer_pipeline.ingest.workers import worker_count


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


class SourceUnavailable(RuntimeError):
    """The shop database cannot be reached or read (a transient error worth a retry)."""


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; this project ships psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


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
            int(value)
        except (TypeError, ValueError):
            return f"field '{col}' is not an integer: {value!r}"
    for col in table.timestamps:
        if parse_timestamp(row.get(col)) is None:
            return f"field '{col}' is not a timestamp: {row.get(col)!r}"
    return None


def _row_hash(values: tuple) -> str:
    return hashlib.sha256("\x1f".join("\x00" if v is None else v for v in values).encode()).hexdigest()


def _query(table: ShopTable, engine: sa.Engine, watermark: str | None, orders_watermark: str | None):
    meta = sa.MetaData()
    try:
        t = sa.Table(table.name, meta, autoload_with=engine)
    except sa.exc.NoSuchTableError as exc:
        raise SourceUnavailable(f"shop database has no table '{table.name}'") from exc
    missing = [c for c in table.columns if c not in t.c]
    if missing:
        raise SourceUnavailable(f"shop table '{table.name}' lacks contract columns {missing}")
    # no driver-side type conversion: a malformed value must reach quarantine, not crash the read
    q = sa.select(*[sa.type_coerce(t.c[c], sa.String).label(c) for c in table.columns])
    if table.watermark and watermark is not None:
        q = q.where(t.c[table.watermark] >= watermark)
    if table.name == "order_items" and orders_watermark is not None:
        orders = sa.Table("orders", meta, autoload_with=engine)
        q = q.where(t.c.order_id.in_(sa.select(orders.c.id).where(orders.c.updated_at >= orders_watermark)))
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


def _get_watermark(con, table: str) -> str | None:
    rows = con.execute(
        "SELECT watermark FROM meta.watermarks WHERE source = 'shop' AND table_name = ?", [table]
    ).fetchall()
    return rows[0][0] if rows else None


# rows converted per chunk while reading (bounds the Python objects held for a large table)
_READ_CHUNK = 100_000
# rows in `orders` (the incremental part) from which the tables are read in worker processes
PARALLEL_MIN_ROWS = 100_000


@dataclass
class _Extracted:
    """One table as read: its good rows as Arrow (lineage included), rejects, rows read, newest watermark."""

    data: pa.Table
    rejects: list[Reject]
    rows_read: int
    newest: str | None


def _read_table(shop_url: str, name: str, marks: dict, now: dt.datetime, run_id: str) -> _Extracted:
    """Read one shop table incrementally and check its rows (runs in process or in a worker)."""
    table = SHOP_TABLES[name]
    location = f"shop:{table.name}"
    mark_at = table.columns.index(table.watermark) if table.watermark else None
    engine = sa.create_engine(sqlalchemy_url(shop_url))
    parts, rejects, rows_read, newest = [], [], 0, None
    try:
        with engine.connect() as conn:
            q = _query(table, engine, marks[table.name], marks["orders"])
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
                    else:
                        good.append(values)
                        refs.append(ref)
                if mark_at is not None and good:
                    top = max(v[mark_at] for v in good)
                    newest = top if newest is None or top > newest else newest
                batch = store.RowBatch(table.columns)
                batch.add(good, refs, "shop", location, [_row_hash(v) for v in good])
                parts.append(batch.arrow(now, run_id))
    except sa.exc.SQLAlchemyError as exc:
        raise SourceUnavailable(f"reading the shop database failed: {str(exc).splitlines()[0]}") from exc
    finally:
        engine.dispose()
    data = pa.concat_tables(parts) if parts else store.RowBatch(table.columns).arrow(now, run_id)
    return _Extracted(data, rejects, rows_read, newest)


def _incremental_orders(engine: sa.Engine, orders_watermark: str | None) -> int:
    """Rows of `orders` the extract will read: the measure of its size (0 when it cannot be told;
    the read itself then reports what is wrong)."""
    try:
        orders = sa.Table("orders", sa.MetaData(), autoload_with=engine)
        q = sa.select(sa.func.count()).select_from(orders)
        if orders_watermark is not None:
            q = q.where(orders.c.updated_at >= orders_watermark)
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
    store.ensure_meta(con)
    try:
        engine = sa.create_engine(sqlalchemy_url(shop_url))
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        raise SourceUnavailable(f"shop database unreachable ({shop_url.split('@')[-1]}): {exc.__class__.__name__}: {str(exc).splitlines()[0]}") from exc
    marks = {name: _get_watermark(con, name) for name in SHOP_TABLES}
    try:
        workers = min(2, worker_count())
        if workers >= 2 and _incremental_orders(engine, marks["orders"]) < PARALLEL_MIN_ROWS:
            workers = 0
    finally:
        engine.dispose()
    results = {}
    pool = (ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
            if workers >= 2 else None)
    try:
        if pool is None:
            reads = (_read_table(shop_url, name, marks, now, run_id) for name in SHOP_TABLES)
        else:
            futures = [pool.submit(_read_table, shop_url, name, marks, now, run_id) for name in SHOP_TABLES]
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
    stats = ExtractStats(table.name, marks[table.name], marks[table.name], rows_read=extracted.rows_read)
    df, rejects = extracted.data, extracted.rejects
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
    if table.watermark and df.num_rows:
        newest = extracted.newest
        if stats.watermark_from is None or newest > stats.watermark_from:
            stats.watermark_to = newest
            con.execute(
                "INSERT OR REPLACE INTO meta.watermarks VALUES ('shop', ?, ?, ?)", [table.name, newest, now]
            )
    con.execute(
        "INSERT INTO meta.extract_log VALUES ('shop', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [location, stats.watermark_from, stats.watermark_to, stats.rows_read, stats.rows_loaded,
         stats.rows_unchanged, stats.rows_quarantined, now, run_id],
    )
    return stats


