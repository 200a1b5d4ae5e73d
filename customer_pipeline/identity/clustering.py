"""Clusters of records that are one person: connected components over accepted links and review decisions."""

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

LINK_COLUMNS = ["record_id_l", "record_id_r", "match_weight", "match_probability", "link_type", "comparison_detail"]
REVIEW_COLUMNS = [*LINK_COLUMNS, "reason", "cluster_key_l", "cluster_key_r", "same_cluster"]


def empty_links() -> pd.DataFrame:
    """A links frame (docs/staging-contract.md) with no rows."""
    return pd.DataFrame(
        {
            "record_id_l": pd.Series(dtype=object),
            "record_id_r": pd.Series(dtype=object),
            "match_weight": pd.Series(dtype=float),
            "match_probability": pd.Series(dtype=float),
            "link_type": pd.Series(dtype=object),
            "comparison_detail": pd.Series(dtype=object),
        }
    )


def arrow_table(frame: pd.DataFrame) -> pa.Table:
    """The frame as an Arrow table, text as Arrow strings: DuckDB scans that without the GIL."""
    out = {}
    for col in frame.columns:
        s = frame[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            s = s.astype("string[pyarrow]")
        out[col] = pa.array(s, from_pandas=True)
    return pa.table(out) if out else pa.table({})


def fetch_pandas(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> pd.DataFrame:
    """Run a query and hand the result over through Arrow (much faster than `.df()` for text)."""
    rel = con.sql(sql, params=params or None)
    to_arrow = getattr(rel, "to_arrow_table", None) or rel.arrow
    return to_arrow().to_pandas()


def connected_components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Root (the smallest member code) of every node 0..n-1, for edges left[i]-right[i].

    Vectorised hook-and-shortcut: every round hooks the larger of two roots under the smaller
    and then flattens the trees, so a component's root is always its smallest code.
    """
    parent = np.arange(n, dtype=np.int64)
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    while left.size:
        pl, pr = parent[left], parent[right]
        differ = pl != pr
        if not differ.any():
            break
        left, right, pl, pr = left[differ], right[differ], pl[differ], pr[differ]
        np.minimum.at(parent, np.maximum(pl, pr), np.minimum(pl, pr))
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return parent


def _decisions_frame(decisions: pd.DataFrame | None) -> pd.DataFrame:
    """Decisions with the optional `decided_at` and their row order, for picking the latest per pair."""
    cols = ["record_id_l", "record_id_r", "decision", "decided_at"]
    d = pd.DataFrame(columns=cols) if decisions is None else decisions.reindex(columns=cols)
    d = d.reset_index(drop=True)
    for col in cols[:3]:
        d[col] = d[col].astype("string[pyarrow]")
    d["decided_at"] = pd.to_datetime(d["decided_at"], utc=True).dt.tz_localize(None)
    d["seq"] = np.arange(len(d), dtype=np.int64)
    return d


_PREPARE = """
CREATE TEMP TABLE ids AS
SELECT record_id, (row_number() OVER (ORDER BY record_id) - 1)::BIGINT AS code
FROM (SELECT DISTINCT record_id FROM ids_in WHERE record_id IS NOT NULL);

-- The latest decision per pair (by decided_at, then by row order).
CREATE TEMP TABLE decided AS
SELECT least(record_id_l, record_id_r) AS l, greatest(record_id_l, record_id_r) AS r, decision
FROM decisions_in
QUALIFY row_number() OVER (
    PARTITION BY least(record_id_l, record_id_r), greatest(record_id_l, record_id_r)
    ORDER BY decided_at DESC NULLS LAST, seq DESC) = 1;

CREATE TEMP TABLE pairs AS
SELECT least(k.record_id_l, k.record_id_r) AS record_id_l,
       greatest(k.record_id_l, k.record_id_r) AS record_id_r,
       k.match_weight, k.match_probability, k.link_type, k.comparison_detail,
       starts_with(coalesce(k.link_type, ''), 'deterministic') OR k.match_weight = 'inf'::DOUBLE AS det,
       d.decision
FROM links_in AS k
LEFT JOIN decided AS d
  ON d.l = least(k.record_id_l, k.record_id_r) AND d.r = greatest(k.record_id_l, k.record_id_r)
WHERE k.record_id_l <> k.record_id_r;
"""

_EDGES = """
SELECT il.code AS l, ir.code AS r, CASE WHEN p.det THEN 1.0 ELSE p.match_probability END AS p
FROM pairs AS p
JOIN ids AS il ON il.record_id = p.record_id_l
JOIN ids AS ir ON ir.record_id = p.record_id_r
WHERE (p.det OR p.match_weight >= $accept) AND p.decision IS DISTINCT FROM 'no_match'
UNION ALL
SELECT il.code, ir.code, 1.0
FROM decided AS d
JOIN ids AS il ON il.record_id = d.l
JOIN ids AS ir ON ir.record_id = d.r
WHERE d.decision = 'match'
"""

_REVIEW = """
WITH queue AS (
    SELECT record_id_l, record_id_r, match_weight, match_probability, link_type, comparison_detail,
           'uncertain' AS reason
    FROM pairs
    WHERE NOT det AND decision IS NULL AND match_weight >= $low AND match_weight < $accept
    QUALIFY row_number() OVER (PARTITION BY record_id_l, record_id_r ORDER BY match_weight DESC) = 1
    UNION ALL
    SELECT d.l, d.r, p.match_weight, p.match_probability, p.link_type, p.comparison_detail,
           'no_match_conflict'
    FROM decided AS d
    LEFT JOIN pairs AS p ON p.record_id_l = d.l AND p.record_id_r = d.r
    WHERE d.decision = 'no_match'
    QUALIFY row_number() OVER (PARTITION BY d.l, d.r ORDER BY p.match_weight DESC NULLS LAST) = 1
)
SELECT q.*, cl.cluster_key AS cluster_key_l, cr.cluster_key AS cluster_key_r,
       cl.cluster_key = cr.cluster_key AS same_cluster
FROM queue AS q
JOIN clusters AS cl ON cl.record_id = q.record_id_l
JOIN clusters AS cr ON cr.record_id = q.record_id_r
WHERE q.reason = 'uncertain' OR cl.cluster_key = cr.cluster_key
ORDER BY q.reason DESC, q.match_weight DESC, q.record_id_l, q.record_id_r
"""


def cluster(
    record_ids,
    links: pd.DataFrame | None,
    accept_weight: float,
    review_low_weight: float,
    decisions: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Group records into people and list the uncertain pairs a person should review.

    Edges: deterministic links, links with `match_weight >= accept_weight`, and `match` decisions.
    A `no_match` decision removes the direct edge of that pair only; when the two records stay
    connected through other links the pair is put back on the review queue as `no_match_conflict`.
    `cluster_key` is the smallest record_id of the cluster (not stable across runs: see ids.py).
    """
    links = empty_links() if links is None or links.empty else links.reindex(columns=LINK_COLUMNS)
    links = links.assign(match_weight=links["match_weight"].astype(float),
                         match_probability=links["match_probability"].astype(float))
    con = duckdb.connect()
    try:
        con.register("ids_in", arrow_table(pd.DataFrame({"record_id": pd.Series(record_ids).reset_index(drop=True)})))
        con.register("links_in", arrow_table(links))
        con.register("decisions_in", arrow_table(_decisions_frame(decisions)))
        con.execute(_PREPARE)
        n = con.execute("SELECT count(*) FROM ids").fetchone()[0]
        edges = con.execute(_EDGES, {"accept": float(accept_weight)}).fetchnumpy()
        root = connected_components(n, edges["l"], edges["r"])
        # A record's probability is the best of the edges that hold it in its cluster; singletons are certain.
        best = np.full(n, -1.0)
        np.maximum.at(best, np.asarray(edges["l"], dtype=np.int64), np.asarray(edges["p"], dtype=float))
        np.maximum.at(best, np.asarray(edges["r"], dtype=np.int64), np.asarray(edges["p"], dtype=float))
        con.register("roots", pa.table({"code": np.arange(n), "root": root, "p": np.where(best < 0, 1.0, best)}))
        con.execute(
            """CREATE TEMP TABLE clusters AS
               SELECT i.record_id, k.record_id AS cluster_key, t.p AS match_probability
               FROM roots AS t JOIN ids AS i ON i.code = t.code JOIN ids AS k ON k.code = t.root"""
        )
        clusters = fetch_pandas(con, "SELECT * FROM clusters ORDER BY record_id")
        review = fetch_pandas(con, _REVIEW, {"low": float(review_low_weight), "accept": float(accept_weight)})
    finally:
        con.close()
    return clusters, review[REVIEW_COLUMNS]
