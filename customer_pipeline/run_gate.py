"""Has anything the stages after the raw layer read changed since they last all succeeded?

`customer-pipeline run` loads the sources first; then, before it starts staging, quality, identity, gold and
the marts, it compares a fingerprint of everything those stages read with the one recorded when they last all
succeeded (`meta.downstream_runs`). Equal: they would rebuild what is already there, so they are not started
(only `gold/source_freshness`, a measurement of the time since each load, runs). Different, or never
recorded, or the last run of them failed or held something back: they run as before.

What the fingerprint covers, each part read from metadata or a small table, never from a whole large table:
- `raw`: the row count of every table in schemas `raw` and `quarantine` (a load, a replaced file, an erasure
  changes them), and every row of the load logs (`meta.loaded_files`: file versions loaded or quarantined;
  `meta.watermarks`: the shop extract's high-water marks; the erasure register and requests), and the rows
  each shop table's extracts loaded or quarantined (`meta.extract_log`);
- `review`: decisions written into `identity.review_queue` and those kept in `identity.review_decisions`;
- `model`: the Splink models in `identity.splink_models` (a retrain adds one);
- `settings`: every `CUSTOMER_PIPELINE_*` environment variable (hashed, never stored or printed);
- `code`: the package's Python and the marts SQL (`sql/`), so a rules or code change rebuilds;
- `date`: today (UTC): the audiences and demographics are as of today.
A part that cannot be read (a table missing) counts as changed. `--full` never asks.
"""

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import duckdb

from customer_pipeline.warehouse import table_exists

TABLE = "meta.downstream_runs"
DDL = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    finished_at TIMESTAMP, run_id VARCHAR, fingerprint VARCHAR, parts VARCHAR)"""
# small tables the loads and the erasure write, and the columns of them that count (the watermarks' updated_at
# moves with every extract, also one that found nothing new)
LOAD_LOGS = {"meta.loaded_files": "t", "meta.watermarks": "source, table_name, watermark",
             "meta.erasure_register": "t", "meta.erasure_requests": "t"}
COUNTED_SCHEMAS = ("raw", "quarantine")
# parts the later stages write themselves (the queue rebuilt without decisions, a first model trained): recorded
# as those stages leave them
WRITTEN_BY_LATER_STAGES = ("review", "model")
PACKAGE = Path(__file__).resolve().parent
SQL_DIR = PACKAGE.parent / "sql"


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _rows_hash(con: duckdb.DuckDBPyConnection, table: str, columns: str = "t") -> list:
    if not table_exists(con, table):
        return [table, None]
    # order-free: a sum of row hashes (`t`: the whole row), with the count
    return [table, *con.execute(f"SELECT count(*), sum(hash({columns})::HUGEINT)::VARCHAR FROM {table} t")
            .fetchall()[0]]


def _raw_part(con: duckdb.DuckDBPyConnection) -> list:
    tables = con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
        f"WHERE database_name = current_database() AND schema_name IN {COUNTED_SCHEMAS} ORDER BY 1"
    ).fetchall()
    counts = [[t, con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]] for (t,) in tables]
    return counts + load_logs(con) + [_extracted(con)]


def _extracted(con: duckdb.DuckDBPyConnection) -> list:
    """Rows the shop extracts loaded or quarantined, per table: a row changed in the shop without moving the
    watermark (read again in the overlap) changes this, not the row counts or the watermarks."""
    if not table_exists(con, "meta.extract_log"):
        return []
    return con.execute("SELECT location, sum(rows_loaded), sum(rows_quarantined) FROM meta.extract_log "
                       "GROUP BY 1 ORDER BY 1").fetchall()


def load_logs(con: duckdb.DuckDBPyConnection) -> list:
    """Every row of the logs the raw writers keep."""
    return [_rows_hash(con, t, cols) for t, cols in LOAD_LOGS.items()]


def table_logs(con: duckdb.DuckDBPyConnection, tables: list[str]) -> list:
    """The rows of the load logs that concern these raw tables: the file versions of their families
    (`meta.loaded_files`), for a shop table its watermark and the rows its extracts loaded or quarantined
    (a row changed without moving the watermark counts too), and every erasure (it reaches any table)."""
    families = sorted(t.removeprefix("raw.") for t in tables if not t.startswith("raw.shop_"))
    shop = sorted(t.removeprefix("raw.shop_") for t in tables if t.startswith("raw.shop_"))
    out: list = []
    if families and table_exists(con, "meta.loaded_files"):
        out.append(con.execute("SELECT count(*), sum(hash(t))::HUGEINT::VARCHAR FROM meta.loaded_files t "
                               "WHERE list_contains(?, family)", [families]).fetchall()[0])
    if shop:
        if table_exists(con, "meta.watermarks"):
            out.append(con.execute(
                "SELECT count(*), sum(hash(source, table_name, watermark))::HUGEINT::VARCHAR FROM meta.watermarks "
                "WHERE source = 'shop' AND list_contains(?, table_name)", [shop]).fetchall()[0])
        if table_exists(con, "meta.extract_log"):
            out.append(con.execute(
                "SELECT location, sum(rows_loaded), sum(rows_quarantined) FROM meta.extract_log "
                "WHERE list_contains(?, location) GROUP BY 1 ORDER BY 1", [[f"shop:{n}" for n in shop]]).fetchall())
    return out + [_rows_hash(con, t) for t in ("meta.erasure_register", "meta.erasure_requests")]


def raw_signature(con: duckdb.DuckDBPyConnection, tables: list[str], *extra) -> str:
    """Raw tables as they are, without reading them: their row counts and the rows of the load logs that
    concern them (`table_logs`; and `extra`, e.g. a suite version). Used by the GX reuse and the freshness
    cache: a load of one source leaves the others' results standing."""
    counts = [con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables]
    return digest([tables, counts, table_logs(con, tables), *extra])


def _review_part(con: duckdb.DuckDBPyConnection) -> list:
    out = []
    if table_exists(con, "identity.review_queue"):
        out.append(con.execute(
            "SELECT count(*), sum(hash(record_id_l, record_id_r, decision))::VARCHAR FROM identity.review_queue "
            "WHERE decision IS NOT NULL AND trim(decision) <> ''").fetchall()[0])
    return out + [_rows_hash(con, "identity.review_decisions")]


def _model_part(con: duckdb.DuckDBPyConnection) -> list:
    if not table_exists(con, "identity.splink_models"):
        return [None]
    return list(con.execute("SELECT count(*), max(version), max(trained_at)::VARCHAR FROM identity.splink_models")
                .fetchall()[0])


def _code_part() -> str:
    h = hashlib.sha256()
    files = sorted(PACKAGE.rglob("*.py")) + sorted(SQL_DIR.glob("*.sql") if SQL_DIR.is_dir() else [])
    for path in files:
        h.update(str(path.relative_to(PACKAGE.parent)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def fingerprint(con: duckdb.DuckDBPyConnection, today: dt.date | None = None) -> dict[str, str]:
    """The parts, each as a short hash (nothing personal is kept: counts and hashes only)."""
    settings = sorted((k, v) for k, v in os.environ.items() if k.startswith("CUSTOMER_PIPELINE_"))
    return {
        "raw": digest(_raw_part(con)),
        "review": digest(_review_part(con)),
        "model": digest(_model_part(con)),
        "settings": digest(settings),
        "code": _code_part(),
        "date": str(today or utc_today()),
    }


def utc_today() -> dt.date:
    """Today in UTC, the date the audiences and demographics are as of (one place, so a test can pin it)."""
    return dt.datetime.now(dt.UTC).date()


def changed_parts(con: duckdb.DuckDBPyConnection, parts: dict[str, str]) -> list[str]:
    """The parts that differ from the last complete run of the later stages (all of them when none is recorded)."""
    if not table_exists(con, TABLE):
        return list(parts)
    row = con.execute(f"SELECT parts FROM {TABLE} ORDER BY finished_at DESC LIMIT 1").fetchall()
    if not row:
        return list(parts)
    before = json.loads(row[0][0])
    return [name for name, value in parts.items() if before.get(name) != value]


def record(con: duckdb.DuckDBPyConnection, parts: dict[str, str], run_id: str) -> None:
    """The later stages all succeeded on the data these parts describe (kept: the last 100 runs)."""
    con.execute(DDL)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    con.execute(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?)", [now, run_id, digest(parts), json.dumps(parts)])
    con.execute(f"""DELETE FROM {TABLE} WHERE finished_at < (
        SELECT min(finished_at) FROM (SELECT finished_at FROM {TABLE} ORDER BY finished_at DESC LIMIT 100))""")


def forget(con: duckdb.DuckDBPyConnection) -> None:
    """The next run starts every later stage (e.g. after a failed or partial run)."""
    if table_exists(con, TABLE):
        con.execute(f"DELETE FROM {TABLE}")
