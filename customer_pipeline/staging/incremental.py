"""Incremental staging: only source records that are new or changed since the last staging run are
standardised again; records whose source row is gone leave staging (docs/staging-contract.md).

Each staged row carries `_input_hash`, a hash of its unified input row (every `INPUT_COLUMNS` value).
A run builds and hashes the whole unified input in DuckDB (set-based SQL) and hands pandas only the rows
whose hash is not in staging yet. Everything is standardised again when the standardiser
code changed (`standardiser_version`: a hash of the `standardize` package's source files) or when the
email events changed (bounces and unsubscribes reach records through their email, not their row).
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from customer_pipeline.standardize import person_records as pr
from customer_pipeline.warehouse import read_df, table_exists, transaction

TABLE = "staging.person_records"
STATE_TABLE = "meta.staging_state"
HASH_COLUMN = "_input_hash"
# DuckDB's hash() of the input columns; another DuckDB version may hash differently: one full run then
HASH_METHOD = f"duckdb-{duckdb.__version__}"


@dataclass
class StagingDelta:
    """What one staging run did."""

    mode: str  # "full" (everything standardised) or "incremental"
    reason: str  # why a full run was needed, or "" when incremental
    total: int = 0
    standardised: int = 0
    reused: int = 0
    removed: int = 0
    changed_ids: list[str] = field(default_factory=list)


def standardiser_version() -> str:
    """A hash of the standardisers' own source: new code re-standardises every record once."""
    digest = hashlib.sha256()
    folder = Path(pr.__file__).parent
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def events_fingerprint(events: pd.DataFrame | None) -> str:
    if events is None or not len(events):
        return "none"
    hashed = pd.util.hash_pandas_object(events.astype(str), index=False)
    return f"{len(events)}:{int(hashed.sum() % 2**63)}"


def _state(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    if not table_exists(con, STATE_TABLE):
        return {}
    return dict(con.execute(f"SELECT key, value FROM {STATE_TABLE}").fetchall())


def _save_state(con: duckdb.DuckDBPyConnection, state: dict[str, str]) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")
    for key, value in state.items():
        con.execute(f"INSERT OR REPLACE INTO {STATE_TABLE} VALUES (?, ?)", [key, value])


def _full_reason(con: duckdb.DuckDBPyConnection, state: dict[str, str], version: str, events_fp: str) -> str:
    if not table_exists(con, TABLE):
        return "no staging table yet"
    columns = {r[0] for r in con.execute(f"SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                         f"'staging' AND table_name = 'person_records'").fetchall()}
    if HASH_COLUMN not in columns:
        return "staging table written by an earlier version"
    if state.get("standardiser_version") != version:
        return "standardiser code changed"
    if state.get("hash_method") != HASH_METHOD:
        return "input hash method changed"
    if state.get("email_events") != events_fp:
        return "email events changed"
    return ""


def stage(con: duckdb.DuckDBPyConnection, source: pd.DataFrame | str, events: pd.DataFrame | None,
          now: datetime, force_full: bool = False) -> StagingDelta:
    """Bring `staging.person_records` up to date with `source` (the unified raw frame, or the SQL that
    builds it), in one transaction. Hashing and diffing run in DuckDB: only the rows to standardise
    again are handed to pandas."""
    registered = not isinstance(source, str)
    if registered:
        con.register("_unified_df", source.reset_index(drop=True))
        source = "SELECT * FROM _unified_df"
    try:
        # the input rows with their record id and hash, in one pass (the columns are known without running it)
        names = [r[0] for r in con.execute(f"DESCRIBE {source}").fetchall()]
        hashed = ", ".join(f'"{c}"' for c in pr.INPUT_COLUMNS if c in names)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _inputs AS SELECT source || '|' || source_key AS record_id,
            hash({hashed}) AS {HASH_COLUMN}, * FROM ({source})""")
    finally:
        if registered:
            con.unregister("_unified_df")
    try:
        return _stage(con, events, now, force_full)
    finally:
        con.execute("DROP TABLE IF EXISTS _inputs")


def _stage(con: duckdb.DuckDBPyConnection, events: pd.DataFrame | None, now: datetime, force_full: bool) -> StagingDelta:
    """`stage` once `_inputs` holds the input rows."""
    version, events_fp = standardiser_version(), events_fingerprint(events)
    reason = "full run asked for" if force_full else _full_reason(con, _state(con), version, events_fp)
    state = {"standardiser_version": version, "email_events": events_fp, "hash_method": HASH_METHOD}
    total = con.execute("SELECT count(*) FROM _inputs").fetchall()[0][0]
    if reason:
        source = read_df(con, "SELECT * FROM _inputs")  # text through Arrow (`.df()`: 2.8 s more at 1M)
        records = _standardise(source, events, now)
        with transaction(con):
            _replace(con, records)
            _save_state(con, {**state, "last_mode": "full", "last_standardised": str(len(records)), "last_removed": "0"})
        return StagingDelta("full", reason, total=len(records), standardised=len(records),
                            changed_ids=records["record_id"].tolist())

    # one full join of ids and hashes: input rows staging lacks (new or changed) and staged rows no input has
    # (removed or changed); then the input rows of the first kind, by a join with that small set
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _staging_diff AS
        SELECT c.record_id AS input_id, c.{HASH_COLUMN} AS input_hash, s.record_id AS staged_id
        FROM (SELECT record_id, {HASH_COLUMN} FROM _inputs) c
        FULL JOIN (SELECT record_id, {HASH_COLUMN} FROM {TABLE}) s
            ON s.record_id = c.record_id AND s.{HASH_COLUMN} = c.{HASH_COLUMN}
        WHERE c.record_id IS NULL OR s.record_id IS NULL""")
    try:
        source = read_df(con, f"""SELECT c.* FROM _inputs c SEMI JOIN _staging_diff d
            ON d.input_id = c.record_id AND d.input_hash = c.{HASH_COLUMN}""")
        stale = [r[0] for r in con.execute(
            "SELECT staged_id FROM _staging_diff WHERE staged_id IS NOT NULL").fetchall()]
    finally:
        con.execute("DROP TABLE IF EXISTS _staging_diff")
    changed = set(source["record_id"])
    fresh = _standardise(source, events, now)
    with transaction(con):
        if stale:  # removed records and the old versions of changed ones
            con.register("_stale", pd.DataFrame({"record_id": stale}))
            con.execute(f"DELETE FROM {TABLE} WHERE record_id IN (SELECT record_id FROM _stale)")
            con.unregister("_stale")
        if len(fresh):
            con.register("_fresh", fresh)
            con.execute(f"INSERT INTO {TABLE} BY NAME SELECT * FROM _fresh")
            con.unregister("_fresh")
        removed = len(set(stale) - changed)
        _save_state(con, {**state, "last_mode": "incremental", "last_standardised": str(len(fresh)),
                          "last_removed": str(removed)})
    return StagingDelta("incremental", "", total=total, standardised=len(fresh), reused=total - len(fresh),
                        removed=removed, changed_ids=sorted(changed))


def _standardise(source: pd.DataFrame, events: pd.DataFrame | None, now: datetime) -> pd.DataFrame:
    """Standardise rows of `_inputs` (record_id and hash first) and put record_id and the hash back."""
    inputs = source.drop(columns=["record_id", HASH_COLUMN]).reset_index(drop=True)
    records = pr.standardize_person_records(inputs, events, now)
    records.insert(0, "record_id", source["record_id"].to_numpy())
    records[HASH_COLUMN] = source[HASH_COLUMN].to_numpy()
    return records


def _replace(con: duckdb.DuckDBPyConnection, records: pd.DataFrame) -> None:
    # a column of nothing but nulls would get DuckDB's default type and refuse later text rows
    empty = [c for c in records.columns if records[c].dtype == object and records[c].isna().all()]
    casts = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in empty)
    select = f"SELECT * REPLACE ({casts}) FROM _staged" if empty else "SELECT * FROM _staged"
    con.register("_staged", records)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS {select}")
    finally:
        con.unregister("_staged")
