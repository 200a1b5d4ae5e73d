"""Incremental staging: only source records that are new or changed since the last staging run are
standardised again; records whose source row is gone leave staging (docs/staging-contract.md).

Each staged row carries `_input_hash`, a hash of its unified input row (every `INPUT_COLUMNS` value).
A run hashes the whole unified input (cheap, set-based SQL plus one vectorised hash) and standardises
only the rows whose hash is not in staging yet. Everything is standardised again when the standardiser
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
from customer_pipeline.warehouse import table_exists, transaction

TABLE = "staging.person_records"
STATE_TABLE = "meta.staging_state"
HASH_COLUMN = "_input_hash"


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


def input_hashes(source: pd.DataFrame) -> pd.Series:
    """One 64-bit hash per unified input row over every input column (deterministic across runs)."""
    columns = [c for c in pr.INPUT_COLUMNS if c in source.columns]
    text = source[columns].astype(object).where(source[columns].notna(), None).astype(str)
    return pd.util.hash_pandas_object(text, index=False).astype("uint64")


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
    if state.get("email_events") != events_fp:
        return "email events changed"
    return ""


def with_record_ids(records: pd.DataFrame, hashes: pd.Series) -> pd.DataFrame:
    records.insert(0, "record_id", records["source"] + "|" + records["source_key"])
    records[HASH_COLUMN] = hashes.to_numpy()
    return records


def stage(con: duckdb.DuckDBPyConnection, source: pd.DataFrame, events: pd.DataFrame | None,
          now: datetime, force_full: bool = False) -> StagingDelta:
    """Bring `staging.person_records` up to date with `source` (the unified raw frame), in one transaction."""
    source = source.reset_index(drop=True)
    hashes = input_hashes(source)
    version, events_fp = standardiser_version(), events_fingerprint(events)
    reason = "full run asked for" if force_full else _full_reason(con, _state(con), version, events_fp)
    ids = source["source"] + "|" + source["source_key"]
    if reason:
        records = with_record_ids(pr.standardize_person_records(source, events, now), hashes)
        with transaction(con):
            _replace(con, records)
            _save_state(con, {"standardiser_version": version, "email_events": events_fp,
                              "last_mode": "full", "last_standardised": str(len(records)), "last_removed": "0"})
        return StagingDelta("full", reason, total=len(records), standardised=len(records),
                            changed_ids=ids.tolist())

    current = pd.DataFrame({"record_id": ids, HASH_COLUMN: hashes})
    con.register("_current_inputs", current)
    try:
        new_rows = con.execute(f"""SELECT c.record_id FROM _current_inputs c LEFT JOIN {TABLE} s
            ON s.record_id = c.record_id AND s.{HASH_COLUMN} = c.{HASH_COLUMN} WHERE s.record_id IS NULL""").df()
        gone = con.execute(f"""SELECT s.record_id FROM {TABLE} s ANTI JOIN _current_inputs c
            ON s.record_id = c.record_id AND s.{HASH_COLUMN} = c.{HASH_COLUMN}""").df()
    finally:
        con.unregister("_current_inputs")
    changed = set(new_rows["record_id"])
    mask = ids.isin(changed)
    fresh = with_record_ids(pr.standardize_person_records(source[mask], events, now), hashes[mask])
    stale = gone["record_id"].tolist()  # removed records and the old versions of changed ones
    with transaction(con):
        if stale:
            con.register("_stale", pd.DataFrame({"record_id": stale}))
            con.execute(f"DELETE FROM {TABLE} WHERE record_id IN (SELECT record_id FROM _stale)")
            con.unregister("_stale")
        if len(fresh):
            con.register("_fresh", fresh)
            con.execute(f"INSERT INTO {TABLE} BY NAME SELECT * FROM _fresh")
            con.unregister("_fresh")
        removed = len(set(stale) - changed)
        _save_state(con, {"standardiser_version": version, "email_events": events_fp, "last_mode": "incremental",
                          "last_standardised": str(len(fresh)), "last_removed": str(removed)})
    return StagingDelta("incremental", "", total=len(source), standardised=len(fresh),
                        reused=len(source) - len(fresh), removed=removed, changed_ids=sorted(changed))


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
