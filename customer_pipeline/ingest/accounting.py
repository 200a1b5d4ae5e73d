"""Proof that nothing was lost: rows read = rows loaded (+ duplicates kept aside) + rows quarantined."""

import duckdb

from customer_pipeline.erasure.register import erased_from_quarantine, erased_in_extract, erased_per_file
from customer_pipeline.quality import thresholds
from customer_pipeline.warehouse import table_exists

# the reason of a file that matches no family: reported as lost rows, but not a delivery of the contract
STRAY_REASON_PREFIX = "file name matches no"

FILE_TABLES = {
    "pos_loyalty_signups": ["raw.pos_loyalty_signups"],
    "pos_transactions": ["raw.pos_transactions"],
    "call_center_contacts": ["raw.call_center_contacts"],
    "app_events": ["raw.app_events", "raw.app_event_duplicates"],
    "suppression_entries": ["raw.suppression_entries"],
}


def account_files(con: duckdb.DuckDBPyConnection, family: str) -> dict:
    """Recount, file by file, what the warehouse holds against what each file delivered."""
    tables = [t for t in FILE_TABLES[family] if table_exists(con, t)]
    if not table_exists(con, "meta.loaded_files"):
        return {"files": 0, "rows_read": 0, "rows_stored": 0, "rows_quarantined": 0, "mismatches": []}
    stored = " + ".join(
        f"(SELECT count(*) FROM {t} x WHERE x._location = f.location)" for t in tables
    ) or "0"
    # a file rejected whole has one quarantine record and counts all its rows_read as quarantined
    rows = con.execute(
        f"""SELECT f.location, f.rows_read, {stored} AS stored,
            (SELECT count(*) FROM quarantine.rejected_records q WHERE q.location = f.location) AS records,
            f.file_error, {erased_per_file(con)} AS erased
        FROM meta.loaded_files f WHERE f.family = ? ORDER BY f.location""",
        [family],
    ).fetchall()
    mismatches, accounted, erased_total = [], [], 0
    for loc, read, st, records, error, erased in rows:
        erased_total += int(erased)  # rows of erased persons (docs/erasure.md): accounted for, not lost
        if error is not None:
            if st != 0 or records != 1:
                mismatches.append(f"{loc}: rejected whole ({error}) but stored {st}, quarantine records {records}")
            quarantined = read
        else:
            quarantined = records
            if read != st + quarantined + erased:
                mismatches.append(f"{loc}: read {read}, stored {st}, quarantined {quarantined}, erased {erased}")
        accounted.append((loc, read, st, quarantined, error))
    return {
        "files": len(rows),
        "rows_read": sum(r[1] for r in accounted),
        "rows_stored": sum(r[2] for r in accounted),
        "rows_quarantined": sum(r[3] for r in accounted),
        "rows_erased": erased_total,
        "mismatches": mismatches,
        "files_losing_rows": [_loss(*r) for r in accounted if _loses_too_much(*r)],
    }


def _loses_too_much(location, read, stored, quarantined, error) -> bool:
    if error is not None:
        return read > 0 and not error.startswith(STRAY_REASON_PREFIX)
    return quarantined >= thresholds.FILE_LOSS_MIN_ROWS and quarantined > thresholds.FILE_LOSS_MAX_SHARE * read


def _loss(location, read, stored, quarantined, error) -> str:
    why = f"rejected whole: {error}" if error else "rows rejected one by one"
    return f"{location}: lost {quarantined:,} of {read:,} rows ({why})"


def account_shop(con: duckdb.DuckDBPyConnection, table: str, run_id: str | None = None) -> dict:
    """For the latest extract of a shop table: read = loaded + unchanged + quarantined, and the
    raw table holds one row per primary key (updates replaced rows, never duplicated them)."""
    location = f"shop:{table}"
    if not table_exists(con, "meta.extract_log"):
        return {"rows_read": 0, "mismatches": [f"{location}: never extracted"]}
    log = con.execute(
        """SELECT rows_read, rows_loaded, rows_unchanged, rows_quarantined, run_id FROM meta.extract_log
        WHERE location = ? ORDER BY loaded_at DESC LIMIT 1""",
        [location],
    ).fetchall()
    if not log:
        return {"rows_read": 0, "mismatches": [f"{location}: never extracted"]}
    read, loaded, unchanged, quarantined, last_run = log[0]
    erased = erased_in_extract(con, location, last_run)  # rows of erased persons, suppressed on arrival
    mismatches = []
    if read != loaded + unchanged + quarantined + erased:
        mismatches.append(f"{location}: read {read} != loaded {loaded} + unchanged {unchanged} + quarantined "
                          f"{quarantined} + erased {erased}")
    key = "order_id, line_no" if table == "order_items" else "id"
    total, distinct = con.execute(
        f"SELECT count(*), count(DISTINCT ({key})) FROM raw.shop_{table}"
    ).fetchall()[0]
    if total != distinct:
        mismatches.append(f"raw.shop_{table}: {total - distinct} duplicated primary keys")
    in_quarantine = con.execute(
        "SELECT count(*) FROM quarantine.rejected_records WHERE location = ?", [location]
    ).fetchall()[0][0]
    if in_quarantine + erased_from_quarantine(con, location) < quarantined:
        mismatches.append(f"{location}: {quarantined} rejected but only {in_quarantine} in quarantine")
    return {
        "rows_read": read, "rows_loaded": loaded, "rows_unchanged": unchanged,
        "rows_quarantined": quarantined, "rows_erased": erased, "rows_in_table": total, "run_id": last_run, "mismatches": mismatches,
    }
