"""The erasure register: keyed hashes of erased identifiers, so the register itself names nobody.

Identifiers are hashed with HMAC-SHA256 under a secret made once per warehouse (`meta.erasure_secret`):
without the secret a hash cannot be tested against a list of emails or phone numbers.
"""

import datetime as dt
import hashlib
import hmac
import secrets

import duckdb

from customer_pipeline.warehouse import table_exists

REGISTER = "meta.erasure_register"
REQUESTS = "meta.erasure_requests"
ERASED_ROWS = "meta.erased_rows"
SECRET = "meta.erasure_secret"

DDL = (
    f"CREATE TABLE IF NOT EXISTS {SECRET} (secret VARCHAR, created_at TIMESTAMP)",
    # region: the ISO country a phone was parsed in (not personal; lets arrivals parse national formats)
    f"""CREATE TABLE IF NOT EXISTS {REGISTER} (identifier_hash VARCHAR, kind VARCHAR, region VARCHAR,
        request_id VARCHAR, erased_at TIMESTAMP)""",
    f"""CREATE TABLE IF NOT EXISTS {REQUESTS} (request_id VARCHAR, requested_by_kind VARCHAR,
        customers BIGINT, records BIGINT, identifiers BIGINT, removed_per_layer VARCHAR,
        erased_at TIMESTAMP, seconds DOUBLE)""",
    # rows taken out of the raw layer (by an erasure or on arrival), per delivered file version or
    # shop extract, so the accounting checks count them as erased, not as lost
    f"""CREATE TABLE IF NOT EXISTS {ERASED_ROWS} (request_id VARCHAR, how VARCHAR, source VARCHAR,
        location VARCHAR, content_hash VARCHAR, table_name VARCHAR, rows BIGINT, run_id VARCHAR,
        erased_at TIMESTAMP)""",
)

# how a row left the raw layer: removed whole, or kept without the person (a receipt's card nulled)
ERASED, ANONYMISED = "erased", "anonymised"


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in DDL:
        con.execute(ddl)


def secret(con: duckdb.DuckDBPyConnection) -> bytes:
    """The warehouse's HMAC key, made on first use."""
    ensure(con)
    rows = con.execute(f"SELECT secret FROM {SECRET} ORDER BY created_at LIMIT 1").fetchall()
    if rows:
        return bytes.fromhex(rows[0][0])
    key = secrets.token_hex(32)
    con.execute(f"INSERT INTO {SECRET} VALUES (?, ?)", [key, now()])
    return bytes.fromhex(key)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Hasher:
    """HMAC-SHA256 of `kind|value` under the warehouse secret (kinds never collide)."""

    def __init__(self, key: bytes):
        self.key = key

    def __call__(self, kind: str, value: str) -> str:
        return hmac.new(self.key, f"{kind}|{value}".encode(), hashlib.sha256).hexdigest()


def has_entries(con: duckdb.DuckDBPyConnection) -> bool:
    """False while nobody was ever erased (the fast path of every load)."""
    return table_exists(con, REGISTER) and bool(con.execute(f"SELECT 1 FROM {REGISTER} LIMIT 1").fetchall())


def registered(con: duckdb.DuckDBPyConnection) -> tuple[set[str], set[str]]:
    """(hashes, phone regions) of the whole register."""
    rows = con.execute(f"SELECT identifier_hash, region FROM {REGISTER}").fetchall()
    return {h for h, _ in rows}, {r for _, r in rows if r}


def record_rows(con, request_id: str | None, how: str, source: str, location: str, content_hash: str | None,
                table: str, rows: int, run_id: str | None) -> None:
    if rows:
        ensure(con)
        con.execute(f"INSERT INTO {ERASED_ROWS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [request_id, how, source, location, content_hash, table, rows, run_id, now()])


def erased_per_file(con: duckdb.DuckDBPyConnection) -> str:
    """SQL for the rows erased from the file version `f` (a meta.loaded_files row): 0 without a register."""
    if not table_exists(con, ERASED_ROWS):
        return "0"
    return (f"(SELECT coalesce(sum(e.rows), 0) FROM {ERASED_ROWS} e WHERE e.how = '{ERASED}' "
            "AND e.location = f.location AND e.content_hash = f.content_hash)")


def erased_in_extract(con: duckdb.DuckDBPyConnection, location: str, run_id: str | None) -> int:
    """Rows of one shop extract (location, run) suppressed on arrival."""
    if run_id is None or not table_exists(con, ERASED_ROWS):
        return 0
    return int(con.execute(
        f"SELECT coalesce(sum(rows), 0) FROM {ERASED_ROWS} WHERE how = '{ERASED}' AND location = ? "
        "AND run_id = ? AND request_id IS NULL", [location, run_id]).fetchall()[0][0])


def erased_from_quarantine(con: duckdb.DuckDBPyConnection, location: str) -> int:
    """Quarantine rows of one location an erasure removed (they held the person's data)."""
    if not table_exists(con, ERASED_ROWS):
        return 0
    return int(con.execute(
        f"SELECT coalesce(sum(rows), 0) FROM {ERASED_ROWS} WHERE location = ? "
        "AND table_name = 'quarantine.rejected_records'", [location]).fetchall()[0][0])


def arrival_lines(con: duckdb.DuckDBPyConnection, run_id: str | None) -> list[str]:
    """For the run summary: rows of erased persons suppressed on arrival in this run, per raw table."""
    if run_id is None or not table_exists(con, ERASED_ROWS):
        return []
    rows = con.execute(
        f"SELECT table_name, how, sum(rows) FROM {ERASED_ROWS} WHERE run_id = ? AND request_id IS NULL "
        "GROUP BY ALL ORDER BY 1, 2", [run_id]).fetchall()
    if not rows:
        return []
    return ["", "Erased persons delivered again (suppressed on arrival, docs/erasure.md)"] + [
        f"  {table:36s} {n:9d}  {'rows not stored' if how == ERASED else 'rows stored without the person'}"
        for table, how, n in rows]
