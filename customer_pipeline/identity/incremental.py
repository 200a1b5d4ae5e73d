"""Incremental scoring: new and changed records are scored against everyone, links of removed ones go.

The links of the last scoring stay valid for every pair of records that did not change: a pair's
comparison depends only on its two records and on the model. Two things drift as the population
grows, the prior (scaled to the number of records, `linking.prior_for`) and the term frequencies,
so the whole population is scored again once it has grown or shrunk by `FULL_RESCORE_GROWTH` since
the last full scoring, and whenever the model or the review floor changed.
"""

from dataclasses import dataclass

import duckdb
import pandas as pd

from customer_pipeline.staging.incremental import HASH_COLUMN
from customer_pipeline.warehouse import table_exists

SCORED_TABLE = "identity.scored_records"
STATE_TABLE = "identity.scoring_state"
# A tenth more (or fewer) records since the last full scoring moves the prior by about 0.14 in match
# weight (log2 1.1): small against the 3-point review band, and the term frequencies as little.
FULL_RESCORE_GROWTH = 0.10


@dataclass
class ScoringPlan:
    mode: str  # "full" or "incremental"
    reason: str
    new_ids: set[str]  # records to score against everyone (incremental only)
    gone_ids: set[str]  # records whose old links are dropped (removed or changed)


def _state(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    if not table_exists(con, STATE_TABLE):
        return {}
    return dict(con.execute(f"SELECT key, value FROM {STATE_TABLE}").fetchall())


def plan(con: duckdb.DuckDBPyConnection, records: pd.DataFrame, model_version: int, review_low: float,
         force_full: bool = False) -> ScoringPlan:
    """Full or incremental scoring for these records, and which records are new or gone."""
    state = _state(con)
    full_at = int(state.get("records_at_full_scoring", "0") or 0)
    reason = (
        "full run asked for" if force_full
        else "no earlier scoring" if not (state and table_exists(con, SCORED_TABLE) and table_exists(con, "identity.links"))
        else "records carry no input hash" if HASH_COLUMN not in records.columns
        else "model changed" if state.get("model_version") != str(model_version)
        else "review floor changed" if float(state.get("review_low_weight", "nan")) != float(review_low)
        else f"records changed by more than {FULL_RESCORE_GROWTH:.0%} since the last full scoring"
        if not full_at or abs(len(records) - full_at) > FULL_RESCORE_GROWTH * full_at
        else ""
    )
    if reason:
        return ScoringPlan("full", reason, set(), set())
    current = pd.DataFrame({"record_id": records["record_id"], HASH_COLUMN: records[HASH_COLUMN]})
    con.register("_current_scored", current)
    try:
        new = con.execute(f"""SELECT c.record_id FROM _current_scored c ANTI JOIN {SCORED_TABLE} s
            ON s.record_id = c.record_id AND s.{HASH_COLUMN} = c.{HASH_COLUMN}""").fetchall()
        gone = con.execute(f"""SELECT s.record_id FROM {SCORED_TABLE} s ANTI JOIN _current_scored c
            ON s.record_id = c.record_id AND s.{HASH_COLUMN} = c.{HASH_COLUMN}""").fetchall()
    finally:
        con.unregister("_current_scored")
    return ScoringPlan("incremental", "", {r[0] for r in new}, {r[0] for r in gone})


def kept_links(old_links: pd.DataFrame, plan_: ScoringPlan) -> pd.DataFrame:
    """The earlier Splink links between two records that are both unchanged."""
    splink = old_links[old_links["link_type"] == "splink"]
    touched = plan_.new_ids | plan_.gone_ids
    return splink[~(splink["record_id_l"].isin(touched) | splink["record_id_r"].isin(touched))]


def save(con: duckdb.DuckDBPyConnection, records: pd.DataFrame, model_version: int, review_low: float,
         plan_: ScoringPlan) -> None:
    """Remember what was scored (inside the caller's transaction)."""
    state = _state(con)
    state.update(model_version=str(model_version), review_low_weight=repr(float(review_low)), last_mode=plan_.mode,
                 last_new_records=str(len(plan_.new_ids) if plan_.mode == "incremental" else len(records)))
    if plan_.mode == "full":
        state["records_at_full_scoring"] = str(len(records))
    scored = pd.DataFrame({"record_id": records["record_id"],
                           HASH_COLUMN: records[HASH_COLUMN] if HASH_COLUMN in records.columns else 0})
    con.register("_scored", scored)
    con.execute(f"CREATE OR REPLACE TABLE {SCORED_TABLE} AS SELECT * FROM _scored")
    con.unregister("_scored")
    con.execute(f"CREATE OR REPLACE TABLE {STATE_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.executemany(f"INSERT INTO {STATE_TABLE} VALUES (?, ?)", list(state.items()))
