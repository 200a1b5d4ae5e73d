"""Stable customer ids: Splink's cluster keys change from run to run, a customer's id never does."""

import os
import uuid
from collections.abc import Callable
from datetime import datetime

import duckdb
import pandas as pd

from customer_pipeline.identity.clustering import arrow_table, fetch_pandas, typed_frame

XREF_COLUMNS = [
    "customer_id",
    "source",
    "source_key",
    "record_id",
    "match_probability",
    "assigned_at",
    "customer_created_at",
]
HISTORY_COLUMNS = ["old_id", "new_id", "reason", "changed_at"]


def new_customer_id() -> str:
    """An opaque id: `C` and 16 hex characters of a random uuid."""
    return "C" + uuid.uuid4().hex[:16]


def _random_ids(count: int) -> list[str]:
    """`count` ids like new_customer_id, drawn in one go (a million uuid4 calls take seconds)."""
    hexed = os.urandom(8 * count).hex()
    return ["C" + hexed[i : i + 16] for i in range(0, len(hexed), 16)]


def mint_ids(count: int, taken: set[str], id_factory: Callable[[], str] | None) -> list[str]:
    """`count` fresh ids, none of them in `taken` nor repeated (customer ids unless `id_factory` says otherwise)."""
    draw = _random_ids if id_factory is None else (lambda k: [id_factory() for _ in range(k)])
    minted: list[str] = []
    seen = set(taken)
    for _ in range(100):
        for candidate in draw(count - len(minted)):
            if candidate not in seen:
                seen.add(candidate)
                minted.append(candidate)
        if len(minted) == count:
            return minted
    raise RuntimeError("id_factory keeps returning ids that are already in use")


def _register_minted(con: duckdb.DuckDBPyConnection, fresh: pd.DataFrame, id_factory) -> None:
    """Mint an id per fresh cluster as `minted_in`, redrawing any that an earlier run already used."""
    minted = mint_ids(len(fresh), set(), id_factory)
    taken: set[str] = set()
    for _ in range(100):
        ids = pd.Series(minted, index=fresh.index, dtype="string[pyarrow]")
        con.register("minted_in", arrow_table(fresh.assign(customer_id=ids)))
        clashes = {r[0] for r in con.execute(
            "SELECT customer_id FROM minted_in WHERE customer_id IN (SELECT old_id FROM prev)"
        ).fetchall()}
        if not clashes:
            return
        taken |= clashes | set(minted)
        redrawn = iter(mint_ids(len(clashes), taken, id_factory))
        minted = [next(redrawn) if m in clashes else m for m in minted]
    raise RuntimeError("id_factory keeps returning ids that are already in use")


def _previous(previous_xref: pd.DataFrame | None) -> pd.DataFrame:
    """record_id, customer_id, assigned_at and customer_created_at of the last run (possibly empty)."""
    return typed_frame(previous_xref, ["record_id", "customer_id"], ["assigned_at", "customer_created_at"])


_PARTS = """
CREATE TEMP TABLE prev AS
SELECT record_id, customer_id AS old_id, coalesce(assigned_at, $now) AS old_assigned_at,
       -- xrefs written before customer_created_at existed: the earliest assignment stands in
       coalesce(customer_created_at, min(assigned_at) OVER (PARTITION BY customer_id), $now) AS created_at
FROM prev_in WHERE customer_id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY record_id ORDER BY assigned_at DESC) = 1;

CREATE TEMP TABLE m AS
SELECT c.record_id, c.cluster_key, c.match_probability, p.old_id, p.old_assigned_at, p.created_at
FROM clusters_in AS c LEFT JOIN prev AS p USING (record_id);

-- Each old id follows the largest part of its records (tie: the part holding the smallest record_id).
CREATE TEMP TABLE parts AS
SELECT old_id, cluster_key, count(*) AS n, min(record_id) AS first_record, min(created_at) AS created_at,
       row_number() OVER (PARTITION BY old_id ORDER BY count(*) DESC, min(record_id)) = 1 AS is_heir
FROM m WHERE old_id IS NOT NULL
GROUP BY old_id, cluster_key;

-- A cluster inheriting several old ids keeps the one first assigned earliest (tie: the smaller id).
CREATE TEMP TABLE kept AS
SELECT cluster_key, old_id AS customer_id, created_at
FROM parts WHERE is_heir
QUALIFY row_number() OVER (PARTITION BY cluster_key ORDER BY created_at, old_id) = 1;
"""

_KEYS = """
CREATE TEMP TABLE keys AS
SELECT cluster_key, customer_id, created_at FROM kept
UNION ALL
SELECT cluster_key, customer_id, $now FROM minted_in
"""

_XREF = """
SELECT k.customer_id,
       split_part(m.record_id, '|', 1) AS source,
       m.record_id[strpos(m.record_id, '|') + 1:] AS source_key,
       m.record_id, m.match_probability,
       CASE WHEN m.old_id = k.customer_id THEN m.old_assigned_at ELSE $now END AS assigned_at,
       k.created_at AS customer_created_at
FROM m JOIN keys AS k USING (cluster_key)
ORDER BY m.record_id
"""

_HISTORY = """
SELECT old_id::VARCHAR AS old_id, new_id::VARCHAR AS new_id, reason::VARCHAR AS reason,
       $now::TIMESTAMP AS changed_at
FROM (
    SELECT p.old_id, k.customer_id AS new_id,
           CASE WHEN p.is_heir THEN 'merge' ELSE 'split' END AS reason
    FROM parts AS p JOIN keys AS k USING (cluster_key)
    WHERE p.old_id <> k.customer_id
    UNION
    SELECT DISTINCT old_id, NULL, 'removed' FROM prev
    WHERE old_id NOT IN (SELECT old_id FROM parts)
)
ORDER BY reason, old_id, new_id
"""


def _run(con: duckdb.DuckDBPyConnection, script: str, params: dict) -> duckdb.DuckDBPyConnection:
    """Run the statements of a script one by one (DuckDB binds parameters per statement)."""
    for statement in filter(None, (part.strip() for part in script.split(";"))):
        con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})
    return con


def assign_ids(
    clusters: pd.DataFrame,
    previous_xref: pd.DataFrame | None,
    now: datetime,
    id_factory: Callable[[], str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give every cluster a customer id, keeping the ids of the previous run.

    - each previous id follows the part of its old records that is largest in the new clusters
      (tie: the part holding the smallest record_id); the other parts get new ids (`split`);
    - a cluster that inherits several previous ids keeps the one first assigned earliest
      (tie: the smaller id); the others are recorded as `merge` into it;
    - a previous id none of whose records is still present is recorded as `removed`;
    - a cluster without any previous record gets a newly minted id.
    """
    now_ts = pd.Timestamp(now)
    now_ts = now_ts.tz_convert("UTC").tz_localize(None) if now_ts.tzinfo else now_ts
    params = {"now": now_ts.to_pydatetime()}
    con = duckdb.connect()
    try:
        con.register("clusters_in", arrow_table(clusters[["record_id", "cluster_key", "match_probability"]]))
        con.register("prev_in", arrow_table(_previous(previous_xref)))
        _run(con, _PARTS, params)
        # Minting in cluster_key order makes a seeded id_factory give reproducible ids.
        fresh = fetch_pandas(
            con, "SELECT DISTINCT cluster_key FROM m WHERE cluster_key NOT IN (SELECT cluster_key FROM kept) ORDER BY 1"
        )
        _register_minted(con, fresh, id_factory)
        _run(con, _KEYS, params)
        xref = fetch_pandas(con, _XREF, params)
        history = fetch_pandas(con, _HISTORY, params)
    finally:
        con.close()
    return xref[XREF_COLUMNS], history[HISTORY_COLUMNS]
