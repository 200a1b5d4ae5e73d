"""Golden records rebuilt only for the customers whose inputs changed (issue 13).

A golden row is a function of its customer's records (survivorship reads nothing else): the record ids
the xref gives the customer and every column of those records that survivorship reads. Each run hashes
that per customer in SQL (`meta.golden_inputs`: customer_id, fingerprint); the next run rebuilds the
customers whose fingerprint is new or different, drops those gone from the xref and keeps every other
row as it is (its `updated_at` says when it last changed). Everything is rebuilt when there is no earlier
state, the survivorship code or the source priority changed, or a full refresh is asked for.

Hashing the columns rather than the raw input hash means a record whose standardised values change
without a new delivery (a suppression register, a consent change, a new standardiser) still rebuilds its
customer: an opt-out always reaches the golden row.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from customer_pipeline.identity import survivorship
from customer_pipeline.warehouse import read_df, table_exists

INPUTS_TABLE = "meta.golden_inputs"
STATE_TABLE = "meta.golden_state"
# this run's inputs (customer_id, fingerprint), a temp table of the step's connection: `plan` fills it, `save`
# keeps it as INPUTS_TABLE (537k rows at 1M records, not read into pandas and back; the queries that semi-join
# the current customers read it as a DuckDB table)
CURRENT = "_golden_current"


@dataclass
class GoldenPlan:
    mode: str  # "full" or "incremental"
    reason: str
    customers: int  # customers in this run's xref (their fingerprints: temp table CURRENT, saved after the write)
    rebuild: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"customer_id": []}))  # incremental only
    removed: int = 0
    kept: int = 0


def salt(source_priority: Sequence[str] = survivorship.DEFAULT_SOURCE_PRIORITY) -> str:
    digest = hashlib.sha256(Path(survivorship.__file__).read_bytes())
    digest.update(repr(tuple(source_priority)).encode())
    return digest.hexdigest()[:16]


def _state(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    if not table_exists(con, STATE_TABLE):
        return {}
    return dict(con.execute(f"SELECT key, value FROM {STATE_TABLE}").fetchall())


def fingerprints(con: duckdb.DuckDBPyConnection) -> int:
    """Temp table CURRENT: customer_id, fingerprint over the xref and the survivorship columns of
    staging.person_records; returns how many customers."""
    present = {r[0] for r in con.execute("DESCRIBE staging.person_records").fetchall()}
    columns = [c for c in survivorship.INPUT_COLUMNS if c in present and c != "record_id"]
    values = ", ".join(f"p.{c}" for c in columns)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {CURRENT} AS
        SELECT x.customer_id, hash(sum(hash(p.record_id, {values}))::VARCHAR, count(*)) AS fingerprint
        FROM gold.customer_xref AS x JOIN staging.person_records AS p USING (record_id)
        WHERE x.customer_id IS NOT NULL
        GROUP BY x.customer_id""")
    return int(con.execute(f"SELECT count(*) FROM {CURRENT}").fetchall()[0][0])


def plan(con: duckdb.DuckDBPyConnection, salt_: str, force_full: bool = False) -> GoldenPlan:
    """Which customers this run rebuilds (and temp table CURRENT)."""
    customers = fingerprints(con)
    state = _state(con)
    reason = (
        "full run asked for" if force_full
        else "no earlier golden table" if not (state and table_exists(con, INPUTS_TABLE)
                                               and table_exists(con, "gold.golden_customers"))
        else "survivorship rules changed" if state.get("salt") != salt_
        else ""
    )
    if reason:
        return GoldenPlan("full", reason, customers)
    # rebuilt: new or changed inputs, or no row to keep (a row removed by hand is built again)
    rebuild = con.execute(f"""
        SELECT c.customer_id FROM {CURRENT} AS c
        WHERE NOT EXISTS (SELECT 1 FROM {INPUTS_TABLE} AS s
                          WHERE s.customer_id = c.customer_id AND s.fingerprint = c.fingerprint)
           OR NOT EXISTS (SELECT 1 FROM gold.golden_customers AS g WHERE g.customer_id = c.customer_id)""").df()
    removed = con.execute(
        f"SELECT count(*) FROM gold.golden_customers ANTI JOIN {CURRENT} USING (customer_id)").fetchall()[0][0]
    return GoldenPlan("incremental", "", customers, rebuild, int(removed), customers - len(rebuild))


def records_of(con: duckdb.DuckDBPyConnection, customers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """staging.person_records rows and xref rows of these customers only."""
    con.register("_golden_todo", customers[["customer_id"]])
    try:
        xref = read_df(con, "SELECT x.* FROM gold.customer_xref AS x SEMI JOIN _golden_todo USING (customer_id)")
        records = read_df(con, """SELECT p.* FROM staging.person_records AS p
            SEMI JOIN (SELECT record_id FROM gold.customer_xref SEMI JOIN _golden_todo USING (customer_id)) USING (record_id)
        """)
    finally:
        con.unregister("_golden_todo")
    return records, xref


def save(con: duckdb.DuckDBPyConnection, plan_: GoldenPlan, salt_: str, households_decided: str = "") -> None:
    """Remember this run's inputs (inside the caller's transaction, with the table they built) and what it did
    (`households_decided`: how many customers' households were decided again, or "every customer")."""
    con.execute(f"CREATE OR REPLACE TABLE {INPUTS_TABLE} AS SELECT * FROM {CURRENT}")
    values = {"salt": salt_, "last_mode": plan_.mode, "last_reason": plan_.reason,
              "last_rebuilt": str(plan_.customers if plan_.mode == "full" else len(plan_.rebuild)),
              "last_removed": str(plan_.removed), "last_kept": str(plan_.kept),
              "last_households_decided": households_decided}
    con.execute(f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.executemany(f"INSERT OR REPLACE INTO {STATE_TABLE} VALUES (?, ?)", list(values.items()))
