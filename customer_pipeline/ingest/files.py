"""Incremental, idempotent loading of landing-folder files into the raw layer.

A file is identified by its name relative to the landing folder and the SHA-256 of its content:
an identical file is never loaded twice, a corrected file under the same name replaces what its
earlier version loaded, and every row read ends up loaded, counted as a duplicate, or quarantined.
One load is one transaction: it lands whole or not at all.
"""

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from customer_pipeline.erasure.arrival import screen_arrivals
from customer_pipeline.ingest import store
from customer_pipeline.ingest.file_stats import StatCache
from customer_pipeline.ingest.formats import (
    APP_EVENT_COLUMNS,
    APP_EVENTS_FOLDER,
    APP_EVENTS_PATTERN,
    CSV_FAMILIES,
    CsvFamily,
)
from customer_pipeline.ingest.parsing import Reject, count_records
from customer_pipeline.ingest.workers import FileParser, ParsedFile
from customer_pipeline.warehouse import transaction

FLUSH_ROWS = 200_000  # rows held in memory before they are written (bounded memory at any volume)


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
    rows_erased: int = 0  # rows of an erased person, suppressed on arrival

    def as_metadata(self) -> dict:
        return dict(self.__dict__)


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


def _matches(pattern: re.Pattern, rel: str) -> bool:
    return bool(pattern.match(rel.rsplit("/", 1)[-1]))


@dataclass
class _Load:
    """One family's load in progress: rows, rejects and bookkeeping, flushed in batches."""

    con: duckdb.DuckDBPyConnection
    source: str
    family: str
    table: str
    columns: tuple[str, ...]
    tables: list[str]
    run_id: str
    now: dt.datetime
    folder: str = ""  # the landing folder its files are in (remembered file hashes: `file_stats`)
    stats: LoadStats = field(default_factory=LoadStats)
    known: dict = field(default_factory=dict)
    files: list[tuple] = field(default_factory=list)
    rejects: list[tuple] = field(default_factory=list)

    def __post_init__(self):
        self.known = store.loaded_hashes(self.con, self.family)
        self.parts: list[pa.Table] = []
        self.pending_rows = 0
        self.stat_cache = StatCache(self.con, self.folder)

    def read_if_wanted(self, rel: str, path: Path) -> tuple[str, bytes] | None:
        """(hash, content) of a file version not in the warehouse; None for one it holds, which is not read
        again when its stat is the one its hash was remembered with (`file_stats`)."""
        st = path.stat()
        remembered = self.stat_cache.cached(rel, st)
        if remembered is not None and self.known.get(rel) == remembered:
            self.wants(rel, remembered)  # counted as seen and skipped
            return None
        data = path.read_bytes()
        digest = file_hash(data)
        self.stat_cache.remember(rel, st, digest)
        return (digest, data) if self.wants(rel, digest) else None

    def wants(self, rel: str, digest: str) -> bool:
        """True when this file version is not in the warehouse (an earlier version is forgotten by
        `replace_earlier` right before the new one is added, in file order)."""
        self.stats.files_seen += 1
        previous = self.known.get(rel)
        if previous == digest:
            self.stats.files_skipped += 1
            return False
        if previous is not None:
            self.stats.files_replaced += 1
        return True

    def replace_earlier(self, rel: str) -> None:
        """Forget what an earlier version of this file loaded (no-op for a file never loaded)."""
        if self.known.get(rel) is not None:
            store.forget_files(self.con, self.family, [rel], self.tables)

    def quarantine_file(self, rel: str, digest: str, reason: str, path: Path | None = None) -> None:
        """One quarantine record for the whole file; `rows_read` says how many records it held (as far
        as they can be read), so the rows a rejected file loses are counted, not hidden as one."""
        rows = count_records(path.read_bytes(), rel) if path is not None else 0
        self.rejects.extend(store.quarantine_rows(self.source, rel, [Reject("file", rel, reason)], self.now, self.run_id))
        self.files.append((self.source, self.family, rel, digest, rows, 0, 0, rows, reason, self.now, self.run_id))
        self.stats.files_quarantined += 1
        self.stats.rows_read += rows
        self.stats.rows_quarantined += rows

    def add(self, rel: str, digest: str, parsed: ParsedFile, path: Path | None = None) -> None:
        if parsed.file_error:
            self.quarantine_file(rel, digest, parsed.file_error, path)
            return
        # rows of a person erased earlier are not stored: counted as erased (docs/erasure.md)
        table, erased = screen_arrivals(self.con, self.family, parsed.table, rel, digest, self.run_id)
        loaded = parsed.rows_loaded - erased
        if loaded:
            self.parts.append(table)
            self.pending_rows += loaded
        self.rejects.extend(store.quarantine_rows(self.source, rel, parsed.rejects, self.now, self.run_id))
        self.files.append((self.source, self.family, rel, digest, parsed.rows_read, loaded, 0,
                           len(parsed.rejects), None, self.now, self.run_id))
        self.stats.files_loaded += 1
        self.stats.rows_read += parsed.rows_read
        self.stats.rows_loaded += loaded
        self.stats.rows_erased += erased
        self.stats.rows_quarantined += len(parsed.rejects)
        if self.pending_rows >= FLUSH_ROWS:
            self.flush()

    def take_batch(self) -> pa.Table:
        """The rows added since the last flush, in file order, as one Arrow table."""
        parts = self.parts or [store.RowBatch(self.columns).arrow(self.now, self.run_id)]
        self.parts, self.pending_rows = [], 0
        return pa.concat_tables(parts)

    def flush(self) -> None:
        store.insert_arrow(self.con, self.table, self.take_batch())

    def handle(self, item, value) -> None:
        """One file's outcome, in file order: (rel, digest, kind, path) and a ParsedFile or a file-level reason."""
        rel, digest, kind, path = item
        self.replace_earlier(rel)
        if kind == "quarantine":
            self.quarantine_file(rel, digest, value, path)
        else:
            self.add(rel, digest, value, path)

    def finish(self) -> None:
        self.flush()
        store.insert_records(self.con, "quarantine.rejected_records", store.QUARANTINE_COLUMNS, self.rejects)
        store.insert_records(self.con, "meta.loaded_files", store.LOADED_FILES_COLUMNS, self.files)


def _transaction(con, work) -> None:
    with transaction(con):
        work()


def load_csv_family(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, family: CsvFamily, run_id: str,
    now: dt.datetime | None = None, claim_unknown: bool = False,
) -> LoadStats:
    """Load every new or corrected file of one CSV family. `claim_unknown` quarantines stray files
    in the family's folder that match no family of that folder (one family per folder claims them)."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    store.ensure_meta(con)
    store.ensure_raw_table(con, family.name, family.columns)
    siblings = [f for f in CSV_FAMILIES.values() if f.folder == family.folder]
    load = _Load(con, family.source, family.name, f"raw.{family.name}", family.columns,
                 [f"raw.{family.name}"], run_id, now, family.folder)

    # (name, path, parse?) of every file this family handles: its own files, and stray ones it claims
    files = (
        (rel, path, _matches(family.pattern, rel))
        for rel, path in landing_files(landing_dir, family.folder)
        if _matches(family.pattern, rel) or (claim_unknown and not any(_matches(f.pattern, rel) for f in siblings))
    )
    return _load_files(con, load, files, family.name, f"file name matches no {family.source} file family of the contract")


def _load_files(con, load: "_Load", files, parse_as: str, stray_reason: str) -> LoadStats:
    """Hash each file, parse the new or corrected ones (in worker processes) and load them in one transaction."""

    def work():
        with FileParser() as parser:
            for rel, path, parse in files:
                wanted = load.read_if_wanted(rel, path)
                if wanted is None:
                    continue
                digest, data = wanted
                if parse:
                    parser.submit((rel, digest, "parse", path), parse_as, data, load.source, rel, digest, load.now, load.run_id)
                else:
                    parser.passthrough((rel, digest, "quarantine", path), stray_reason)
                for item, value in parser.ready():
                    load.handle(item, value)
            for item, value in parser.drain():
                load.handle(item, value)
        load.finish()
        load.stat_cache.save()

    _transaction(con, work)
    return load.stats


APP_TABLES = ["raw.app_events", "raw.app_event_duplicates"]


class _AppLoad(_Load):
    """App events: a message already stored (same messageId) is kept once; re-deliveries go aside."""

    def flush(self) -> None:
        data = self.take_batch()
        if data.num_rows == 0:
            return
        self.con.register("_events", data)
        try:
            cols = ", ".join(f'"{c}"' for c in data.column_names)
            self.con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _numbered AS
                SELECT {cols}, row_number() OVER () AS _seq FROM _events"""
            )
            self.con.execute(
                f"""INSERT INTO raw.app_events ({cols}) SELECT {cols} FROM _numbered n
                WHERE NOT EXISTS (SELECT 1 FROM raw.app_events e WHERE e.message_id = n.message_id)
                QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY _seq) = 1"""
            )
            self.con.execute(
                f"""INSERT INTO raw.app_event_duplicates ({cols}) SELECT {cols} FROM _numbered n
                WHERE NOT EXISTS (SELECT 1 FROM raw.app_events e WHERE e.message_id = n.message_id
                    AND e._location = n._location AND e._record_ref = n._record_ref)"""
            )
            self.con.execute("DROP TABLE _numbered")
        finally:
            self.con.unregister("_events")

    def finish(self) -> None:
        self.flush()
        # a message's first delivery whose file was corrected away: a re-delivery becomes the message
        _promote_orphaned_duplicates(self.con)
        counts = dict(
            ((loc, kind), n)
            for kind, table in (("loaded", "raw.app_events"), ("dup", "raw.app_event_duplicates"))
            for loc, n in self.con.execute(
                f"SELECT _location, count(*) FROM {table} WHERE _run_id = ? GROUP BY 1", [self.run_id]
            ).fetchall()
        )
        fixed = []
        for rec in self.files:
            if rec[8] is None:  # a loaded file: split its rows into stored and duplicate
                loaded, dup = counts.get((rec[2], "loaded"), 0), counts.get((rec[2], "dup"), 0)
                rec = rec[:5] + (loaded, dup) + rec[7:]
            fixed.append(rec)
        self.files = fixed
        self.stats.rows_duplicate = sum(r[6] for r in fixed)
        self.stats.rows_loaded = sum(r[5] for r in fixed)
        store.insert_records(self.con, "quarantine.rejected_records", store.QUARANTINE_COLUMNS, self.rejects)
        store.insert_records(self.con, "meta.loaded_files", store.LOADED_FILES_COLUMNS, self.files)


def load_app_events(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, run_id: str, now: dt.datetime | None = None
) -> LoadStats:
    """Load new or corrected app-event files (JSON Lines, optionally gzipped)."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    store.ensure_meta(con)
    for table in ("app_events", "app_event_duplicates"):
        store.ensure_raw_table(con, table, APP_EVENT_COLUMNS)
    load = _AppLoad(con, "app", "app_events", "raw.app_events", APP_EVENT_COLUMNS, APP_TABLES, run_id, now,
                    APP_EVENTS_FOLDER)
    files = ((rel, path, _matches(APP_EVENTS_PATTERN, rel)) for rel, path in landing_files(landing_dir, APP_EVENTS_FOLDER))
    return _load_files(con, load, files, "app_events", "file name matches no app_events file family of the contract")


def _promote_orphaned_duplicates(con) -> None:
    cols = ", ".join(f'"{c}"' for c in APP_EVENT_COLUMNS)
    lineage = "_source, _location, _record_ref, _content_hash, _ingested_at, _run_id"
    con.execute(
        f"""INSERT INTO raw.app_events ({cols}, {lineage})
        SELECT {cols}, {lineage} FROM raw.app_event_duplicates d
        WHERE NOT EXISTS (SELECT 1 FROM raw.app_events e WHERE e.message_id = d.message_id)
        QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY _location, try_cast(_record_ref AS BIGINT)) = 1"""
    )
    con.execute(
        """DELETE FROM raw.app_event_duplicates d USING raw.app_events e
        WHERE e.message_id = d.message_id AND e._location = d._location AND e._record_ref = d._record_ref"""
    )


# (raw.app_identifies column, JSON path in traits); a trait that is an object, list or boolean is
# not a value of the field: it is dropped and named in `non_text_traits` (a number is accepted as
# text only for phones and postcodes, which apps send as numbers)
_TRAITS = (
    ("email", "$.email"), ("first_name", "$.firstName"), ("last_name", "$.lastName"), ("phone", "$.phone"),
    ("birthday", "$.birthday"), ("street", "$.address.street"), ("city", "$.address.city"),
    ("postal_code", "$.address.postalCode"), ("country", "$.address.country"),
)
_NUMERIC_OK = {"phone", "postal_code"}
_NUMBER_TYPES = "('BIGINT', 'UBIGINT', 'DOUBLE')"


def _trait_ok(path: str, col: str) -> str:
    allowed = f"json_type(traits, '{path}') = 'VARCHAR'"
    if col in _NUMERIC_OK:
        allowed = f"({allowed} OR json_type(traits, '{path}') IN {_NUMBER_TYPES})"
    return allowed


def _trait_value(path: str, col: str) -> str:
    return f"CASE WHEN {_trait_ok(path, col)} THEN json_extract_string(traits, '{path}') END"


def _trait_misfit(path: str, col: str) -> str:
    return (f"CASE WHEN coalesce(json_type(traits, '{path}'), 'NULL') <> 'NULL' AND NOT {_trait_ok(path, col)} "
            f"THEN '{col}' END")


_IDENTIFY_ROWS = "FROM raw.app_events WHERE type = 'identify' AND traits IS NOT NULL AND traits <> '{}'"
_IDENTIFY_SELECT = f"""SELECT message_id, anonymous_id, user_id, "timestamp",
    {", ".join(f"{_trait_value(path, col)} AS {col}" for col, path in _TRAITS)},
    nullif(concat_ws(',', {", ".join(_trait_misfit(path, col) for col, path in _TRAITS)}), '') AS non_text_traits,
    _location, _record_ref, _ingested_at, _run_id"""
# a row of raw.app_events is never changed in place (a corrected file's rows leave and its new rows come in,
# an erasure deletes): these columns tell whether raw.app_identifies holds a message's current row
_IDENTIFY_KEY = ("message_id", "_location", "_record_ref", "_run_id")
# kept as the table's comment: a change of the extraction (this code) rebuilds the table whole
_IDENTIFY_VERSION = "app_identifies " + hashlib.sha256(_IDENTIFY_SELECT.encode()).hexdigest()[:16]


def rebuild_app_identities(con: duckdb.DuckDBPyConnection, whole: bool = False) -> dict[str, int]:
    """Person-describing identify traits and alias links, in a form the identity stage reads.

    raw.app_identifies follows raw.app_events row for row: the messages that left it (a corrected file, a
    promoted re-delivery, an erasure) leave, the new ones are extracted, the rest stay as they are (the traits
    of 140k identify messages are 2 s of JSON at 1M records). `whole` (or a first build, or changed extraction
    code) extracts every message again. Aliases (no JSON) are always rebuilt."""
    current = con.execute(
        "SELECT comment FROM duckdb_tables() WHERE schema_name = 'raw' AND table_name = 'app_identifies'").fetchall()
    if whole or not current or current[0][0] != _IDENTIFY_VERSION:
        con.execute(f"CREATE OR REPLACE TABLE raw.app_identifies AS {_IDENTIFY_SELECT} {_IDENTIFY_ROWS} ORDER BY message_id")
        con.execute(f"COMMENT ON TABLE raw.app_identifies IS '{_IDENTIFY_VERSION}'")
    else:
        on = " AND ".join(f"e.{c} = i.{c}" for c in _IDENTIFY_KEY)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _identify_diff AS
            SELECT e.message_id AS arrived, i.message_id AS left_
            FROM (SELECT {", ".join(_IDENTIFY_KEY)} {_IDENTIFY_ROWS}) AS e
            FULL JOIN (SELECT {", ".join(_IDENTIFY_KEY)} FROM raw.app_identifies) AS i ON {on}
            WHERE e.message_id IS NULL OR i.message_id IS NULL"""
        )
        con.execute("DELETE FROM raw.app_identifies WHERE message_id IN "
                    "(SELECT left_ FROM _identify_diff WHERE left_ IS NOT NULL)")
        con.execute(f"""INSERT INTO raw.app_identifies {_IDENTIFY_SELECT} {_IDENTIFY_ROWS}
            AND message_id IN (SELECT arrived FROM _identify_diff WHERE arrived IS NOT NULL) ORDER BY message_id""")
        con.execute("DROP TABLE _identify_diff")
    con.execute(
        """CREATE OR REPLACE TABLE raw.app_aliases AS
        SELECT message_id, previous_id, user_id, "timestamp", _location, _record_ref, _ingested_at, _run_id
        FROM raw.app_events WHERE type = 'alias' ORDER BY message_id"""
    )
    return {
        "identifies": con.execute("SELECT count(*) FROM raw.app_identifies").fetchall()[0][0],
        "aliases": con.execute("SELECT count(*) FROM raw.app_aliases").fetchall()[0][0],
    }


def raw_asset_folder(table: str) -> str | None:
    """The landing folder a raw table is loaded from (None: not from files, e.g. the shop database)."""
    if table == "app_events":
        return APP_EVENTS_FOLDER
    family = CSV_FAMILIES.get(table)
    return family.folder if family else None


def pending_files(con: duckdb.DuckDBPyConnection, landing_dir: Path, folder: str) -> list[str]:
    """The files of a landing folder whose version the warehouse does not hold (new or corrected): what a load
    of that folder would read. Files whose stat is unchanged are not read again (`file_stats`)."""
    store.ensure_meta(con)
    loaded = dict(con.execute("SELECT location, content_hash FROM meta.loaded_files WHERE starts_with(location, ?)",
                              [f"{folder}/"]).fetchall())
    cache = StatCache(con, folder)
    pending = [rel for rel, path in landing_files(landing_dir, folder) if loaded.get(rel) != cache.digest(rel, path)]
    cache.save()
    return pending
