"""Preference registers (`suppression/<register>_<YYYY-MM-DD>.csv`) into `raw.suppression_entries`.

Loaded like every CSV family (lineage, content hash, a corrected file replaces its earlier version, rows
quarantined with their reason, files accounted for in `meta.loaded_files`), with the register's own row
rules on top of the contract's: `kind` is one of `KINDS`, a value no longer than `MAX_VALUE_LENGTH` (an
unreadable `listed_at` does not reject the entry: staging nulls it and the block stays). Every delivered row
is kept; which file is a register's current snapshot is decided in staging
(`customer_pipeline/staging/suppression.py`). Registers are small: parsed in process.
"""

import datetime as dt
from pathlib import Path

import duckdb

from customer_pipeline.ingest import store
from customer_pipeline.ingest.files import LoadStats, _Load, _matches, _transaction, landing_files
from customer_pipeline.ingest.formats import SUPPRESSION
from customer_pipeline.ingest.parsing import Reject, _csv_line, parse_csv
from customer_pipeline.ingest.workers import ParsedFile

KINDS = ("phone", "email", "postal")
# an email is at most 254 characters; a phone or a postal line far less: anything longer is not an entry
MAX_VALUE_LENGTH = 254
STRAY_REASON = "file name matches no suppression file family of the contract"


def _entry_problem(row: tuple) -> str | None:
    kind, value = row[0], row[1]
    if (kind or "").strip().lower() not in KINDS:
        return f"field 'kind' is not one of {', '.join(KINDS)}: {kind!r}"
    if len(value.strip()) > MAX_VALUE_LENGTH:
        return f"field 'value' is longer than {MAX_VALUE_LENGTH} characters ({len(value.strip())})"
    return None


def parse_register(data: bytes, rel: str, digest: str, now: dt.datetime, run_id: str) -> ParsedFile:
    """One register file: the contract's CSV rules (`parse_csv`), then the register's own row rules."""
    parsed = parse_csv(data, SUPPRESSION)
    if parsed.file_error:
        return ParsedFile(file_error=parsed.file_error)
    rows, refs, rejects = [], [], list(parsed.rejects)
    for row, ref in zip(parsed.rows, parsed.refs):
        problem = _entry_problem(row)
        if problem:
            rejects.append(Reject(ref, _csv_line(["" if v is None else v for v in row]), problem))
        else:
            rows.append(row)
            refs.append(ref)
    rejects.sort(key=lambda r: int(r.record_ref) if r.record_ref.isdigit() else 0)
    batch = store.RowBatch(SUPPRESSION.columns)
    batch.add(rows, refs, SUPPRESSION.source, rel, digest)
    return ParsedFile(table=batch.arrow(now, run_id), rejects=rejects)


def load_suppression_registers(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, run_id: str, now: dt.datetime | None = None
) -> LoadStats:
    """Load every new or corrected register file; stray files in `suppression/` are quarantined whole.
    A landing folder without `suppression/` loads nothing (the table exists, empty)."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    store.ensure_meta(con)
    store.ensure_raw_table(con, SUPPRESSION.name, SUPPRESSION.columns)
    table = f"raw.{SUPPRESSION.name}"
    load = _Load(con, SUPPRESSION.source, SUPPRESSION.name, table, SUPPRESSION.columns, [table], run_id, now,
                 SUPPRESSION.folder)

    def work():
        for rel, path in landing_files(landing_dir, SUPPRESSION.folder):
            wanted = load.read_if_wanted(rel, path)
            if wanted is None:
                continue
            digest, data = wanted
            load.replace_earlier(rel)
            if _matches(SUPPRESSION.pattern, rel):
                load.add(rel, digest, parse_register(data, rel, digest, now, run_id), path)
            else:
                load.quarantine_file(rel, digest, STRAY_REASON, path)
        load.finish()
        load.stat_cache.save()

    _transaction(con, work)
    return load.stats
