"""Identity tables in the warehouse: links, review queue and decisions (DuckDB SQL, no Dagster)."""

import duckdb
import pandas as pd

from customer_pipeline.warehouse import table_exists

DECISIONS_DDL = """
CREATE TABLE IF NOT EXISTS identity.review_decisions (
    record_id_l VARCHAR, record_id_r VARCHAR, decision VARCHAR, decided_by VARCHAR, decided_at TIMESTAMP,
    PRIMARY KEY (record_id_l, record_id_r)
)"""


def read_table(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame | None:
    return con.execute(f"SELECT * FROM {table}").df() if table_exists(con, table) else None


def collect_decisions(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Decisions a person wrote into identity.review_queue (column `decision`) are kept for good
    in identity.review_decisions, so the next run honours them even after the queue is rebuilt."""
    con.execute(DECISIONS_DDL)
    if table_exists(con, "identity.review_queue"):
        con.execute(
            """INSERT OR REPLACE INTO identity.review_decisions
            SELECT least(record_id_l, record_id_r), greatest(record_id_l, record_id_r), lower(trim(decision)),
                coalesce(decided_by, 'review_queue'), coalesce(decided_at, now()::TIMESTAMP)
            FROM identity.review_queue WHERE lower(trim(decision)) IN ('match', 'no_match')"""
        )
    return con.execute(
        "SELECT record_id_l, record_id_r, decision FROM identity.review_decisions ORDER BY ALL"
    ).df()


def review_queue_with_records(queue: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """The queue a person works through: both records side by side, and columns to decide in."""
    shown = ["record_id", "first_name", "last_name", "birth_date", "email_corrected", "phone_e164",
             "street", "postcode", "city"]
    side = records[shown]
    out = queue.merge(side.add_suffix("_l"), on="record_id_l", how="left")
    out = out.merge(side.add_suffix("_r"), on="record_id_r", how="left")
    # typed empty columns, so a reviewer can UPDATE them in place
    out["decision"] = pd.Series([None] * len(out), dtype="string", index=out.index)
    out["decided_by"] = pd.Series([None] * len(out), dtype="string", index=out.index)
    out["decided_at"] = pd.Series([None] * len(out), dtype="datetime64[us]", index=out.index)
    return out
