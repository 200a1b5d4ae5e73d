"""Incremental, idempotent loading of landing-folder files into the raw layer.

A file is identified by its name relative to the landing folder and the SHA-256 of its content:
an identical file is never loaded twice, a corrected file under the same name replaces what its
earlier version loaded, and every row read ends up loaded, counted as a duplicate, or quarantined.
"""

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from customer_pipeline.ingest import store
from customer_pipeline.ingest.formats import (
    APP_EVENT_COLUMNS,
    APP_EVENTS_FOLDER,
    APP_EVENTS_PATTERN,
    CSV_FAMILIES,
    CsvFamily,
)
from customer_pipeline.ingest.parsing import ParseResult, Reject, parse_csv, parse_jsonl


@dataclass
class LoadStats:
    """What one asset's load did, for metadata and the run summary."""

    files_seen: int = 0
    files_loaded: int = 0
    files_skipped: int = 0
    files_replaced: int = 0
    files_quarantined: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_duplicate: int = 0
    rows_quarantined: int = 0
    loaded_locations: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "loaded_locations"}


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def landing_files(landing_dir: Path, folder: str) -> list[tuple[str, Path]]:
    """(relative posix name, path) of every regular file under landing_dir/folder, sorted by name."""
    base = landing_dir / folder
    if not base.is_dir():
        return []
    found = [
        (p.relative_to(landing_dir).as_posix(), p)
        for p in base.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    ]
    return sorted(found)


def _families_in(folder: str) -> list[CsvFamily]:
    return [f for f in CSV_FAMILIES.values() if f.folder == folder]


def _matches(pattern: re.Pattern, rel: str) -> bool:
    return bool(pattern.match(rel.rsplit("/", 1)[-1]))


def _begin_file(con, family: str, rel: str, digest: str, tables: list[str], stats: LoadStats) -> bool:
    """Decide whether a file needs loading; forget an earlier, different version. True = load it."""
    previous = store.loaded_hash(con, family, rel)
    if previous == digest:
        stats.files_skipped += 1
        return False
    if previous is not None:
        store.forget_file(con, family, rel, tables)
        stats.files_replaced += 1
    return True


def _quarantine_file(con, source, family, rel, digest, reason, now, run_id, stats) -> None:
    store.quarantine(con, source, rel, [Reject("file", rel, reason)], now, run_id)
    store.record_file(
        con, source=source, family=family, location=rel, content_hash=digest, rows_read=1,
        rows_loaded=0, rows_quarantined=1, file_error=reason, loaded_at=now, run_id=run_id,
    )
    stats.files_quarantined += 1
    stats.rows_read += 1
    stats.rows_quarantined += 1


def load_csv_family(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, family: CsvFamily, run_id: str,
    now: dt.datetime | None = None, claim_unknown: bool = False,
) -> LoadStats:
    """Load every new or corrected file of one CSV family. `claim_unknown` quarantines stray files
    in the family's folder that match no family of that folder (one family per folder claims them)."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    store.ensure_meta(con)
    store.ensure_raw_table(con, family.name, family.columns)
    table = f"raw.{family.name}"
    stats = LoadStats()
    siblings = _families_in(family.folder)
    for rel, path in landing_files(landing_dir, family.folder):
        mine = _matches(family.pattern, rel)
        unknown = not any(_matches(f.pattern, rel) for f in siblings)
        if not mine and not (claim_unknown and unknown):
            continue
        stats.files_seen += 1
        data = path.read_bytes()
        digest = file_hash(data)
        con.execute("BEGIN TRANSACTION")
        try:
            if _begin_file(con, family.name, rel, digest, [table], stats):
                if not mine:
                    reason = f"file name matches no {family.source} file family of the contract"
                    _quarantine_file(con, family.source, family.name, rel, digest, reason, now, run_id, stats)
                else:
                    _load_parsed(con, family, rel, digest, parse_csv(data, family), now, run_id, stats)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return stats


def _load_parsed(con, family: CsvFamily, rel, digest, parsed: ParseResult, now, run_id, stats) -> None:
    if parsed.file_error:
        _quarantine_file(con, family.source, family.name, rel, digest, parsed.file_error, now, run_id, stats)
        return
    df = store.rows_frame(
        family.columns, parsed.rows, parsed.refs, source=family.source, location=rel,
        content_hashes=digest, ingested_at=now, run_id=run_id,
    )
    store.insert_frame(con, f"raw.{family.name}", df)
    store.quarantine(con, family.source, rel, parsed.rejects, now, run_id)
    store.record_file(
        con, source=family.source, family=family.name, location=rel, content_hash=digest,
        rows_read=parsed.rows_read, rows_loaded=len(parsed.rows), rows_quarantined=len(parsed.rejects),
        loaded_at=now, run_id=run_id,
    )
    stats.files_loaded += 1
    stats.rows_read += parsed.rows_read
    stats.rows_loaded += len(parsed.rows)
    stats.rows_quarantined += len(parsed.rejects)
    stats.loaded_locations.append(rel)


APP_TABLES = ["raw.app_events", "raw.app_event_duplicates"]


def load_app_events(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, run_id: str, now: dt.datetime | None = None
) -> LoadStats:
    """Load new or corrected app-event files; a message already stored (same messageId) is kept
    once in raw.app_events and its re-delivery recorded in raw.app_event_duplicates."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    store.ensure_meta(con)
    for table in ("app_events", "app_event_duplicates"):
        store.ensure_raw_table(con, table, APP_EVENT_COLUMNS)
    stats = LoadStats()
    for rel, path in landing_files(landing_dir, APP_EVENTS_FOLDER):
        stats.files_seen += 1
        data = path.read_bytes()
        digest = file_hash(data)
        con.execute("BEGIN TRANSACTION")
        try:
            if _begin_file(con, "app_events", rel, digest, APP_TABLES, stats):
                _promote_orphaned_duplicates(con)
                if not _matches(APP_EVENTS_PATTERN, rel):
                    reason = "file name matches no app_events file family of the contract"
                    _quarantine_file(con, "app", "app_events", rel, digest, reason, now, run_id, stats)
                else:
                    parsed = parse_jsonl(data, gzipped=rel.endswith(".gz"))
                    _load_events(con, rel, digest, parsed, now, run_id, stats)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return stats


def _promote_orphaned_duplicates(con) -> None:
    """After a corrected file removed a message's first delivery, a re-delivery becomes the message."""
    cols = ", ".join(f'"{c}"' for c in APP_EVENT_COLUMNS)
    lineage = "_source, _location, _record_ref, _content_hash, _ingested_at, _run_id"
    con.execute(
        f"""INSERT INTO raw.app_events ({cols}, {lineage})
        SELECT {cols}, {lineage} FROM (
            SELECT *, row_number() OVER (PARTITION BY message_id ORDER BY _location, _record_ref) AS rn
            FROM raw.app_event_duplicates d
            WHERE NOT EXISTS (SELECT 1 FROM raw.app_events e WHERE e.message_id = d.message_id)
        ) WHERE rn = 1"""
    )
    con.execute(
        """DELETE FROM raw.app_event_duplicates d USING raw.app_events e
        WHERE e.message_id = d.message_id AND e._location = d._location AND e._record_ref = d._record_ref"""
    )


def _load_events(con, rel, digest, parsed: ParseResult, now, run_id, stats) -> None:
    if parsed.file_error:
        _quarantine_file(con, "app", "app_events", rel, digest, parsed.file_error, now, run_id, stats)
        return
    df = store.rows_frame(
        APP_EVENT_COLUMNS, parsed.rows, parsed.refs, source="app", location=rel,
        content_hashes=digest, ingested_at=now, run_id=run_id,
    )
    con.register("_new_ids", df[["message_id"]].drop_duplicates())
    try:
        existing = {
            r[0]
            for r in con.execute(
                "SELECT e.message_id FROM raw.app_events e JOIN _new_ids n USING (message_id)"
            ).fetchall()
        }
    finally:
        con.unregister("_new_ids")
    duplicate = df["message_id"].isin(existing) | df.duplicated("message_id", keep="first")
    store.insert_frame(con, "raw.app_events", df[~duplicate])
    store.insert_frame(con, "raw.app_event_duplicates", df[duplicate])
    store.quarantine(con, "app", rel, parsed.rejects, now, run_id)
    n_dup = int(duplicate.sum())
    store.record_file(
        con, source="app", family="app_events", location=rel, content_hash=digest,
        rows_read=parsed.rows_read, rows_loaded=len(df) - n_dup, rows_duplicate=n_dup,
        rows_quarantined=len(parsed.rejects), loaded_at=now, run_id=run_id,
    )
    stats.files_loaded += 1
    stats.rows_read += parsed.rows_read
    stats.rows_loaded += len(df) - n_dup
    stats.rows_duplicate += n_dup
    stats.rows_quarantined += len(parsed.rejects)
    stats.loaded_locations.append(rel)


def rebuild_app_identities(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Person-describing identify traits and alias links, in a form the identity stage reads."""
    con.execute(
        """CREATE OR REPLACE TABLE raw.app_identifies AS
        SELECT message_id, anonymous_id, user_id, "timestamp",
            json_extract_string(traits, '$.email') AS email,
            json_extract_string(traits, '$.firstName') AS first_name,
            json_extract_string(traits, '$.lastName') AS last_name,
            json_extract_string(traits, '$.phone') AS phone,
            json_extract_string(traits, '$.birthday') AS birthday,
            json_extract_string(traits, '$.address.street') AS street,
            json_extract_string(traits, '$.address.city') AS city,
            json_extract_string(traits, '$.address.postalCode') AS postal_code,
            json_extract_string(traits, '$.address.country') AS country,
            _location, _record_ref, _ingested_at, _run_id
        FROM raw.app_events WHERE type = 'identify' AND traits IS NOT NULL AND traits <> '{}'
        ORDER BY message_id"""
    )
    con.execute(
        """CREATE OR REPLACE TABLE raw.app_aliases AS
        SELECT message_id, previous_id, user_id, "timestamp", _location, _record_ref, _ingested_at, _run_id
        FROM raw.app_events WHERE type = 'alias' ORDER BY message_id"""
    )
    return {
        "identifies": con.execute("SELECT count(*) FROM raw.app_identifies").fetchall()[0][0],
        "aliases": con.execute("SELECT count(*) FROM raw.app_aliases").fetchall()[0][0],
    }
