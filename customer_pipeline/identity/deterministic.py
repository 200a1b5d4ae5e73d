"""Deterministic links: records that name the same account, card or app user are one person."""

import duckdb
import pandas as pd

from customer_pipeline.identity.clustering import LINK_COLUMNS, arrow_table, empty_links, fetch_pandas

__all__ = ["LINK_COLUMNS", "deterministic_links", "deterministic_links_sql", "empty_links"]

_SQL = """
WITH r AS (
    SELECT record_id, source, source_key,
           source = 'shop' AND starts_with(source_key, 'customer:') AS is_account,
           source = 'app' AND starts_with(source_key, 'user:') AS is_app_user,
           coalesce(
               nullif(trim(shop_customer_id), ''),
               CASE WHEN source = 'shop' AND starts_with(source_key, 'customer:') THEN source_key[10:]
                    WHEN source = 'app' AND starts_with(source_key, 'user:') THEN source_key[6:] END
           ) AS customer_ref,
           nullif(trim(loyalty_card_no), '') AS card_ref
    FROM ({recs}) AS recs
),
-- One anchor per key (the shop account, else the app user; the card's signup): a star, not a clique.
account_anchor AS (
    SELECT customer_ref,
           coalesce(min(record_id) FILTER (WHERE is_account), min(record_id) FILTER (WHERE is_app_user)) AS anchor
    FROM r WHERE customer_ref IS NOT NULL AND (is_account OR is_app_user)
    GROUP BY customer_ref
),
card_anchor AS (
    SELECT card_ref, min(record_id) AS anchor
    FROM r WHERE source = 'pos' AND starts_with(source_key, 'card:') AND card_ref IS NOT NULL
    GROUP BY card_ref
),
-- A device that identified as several users (a family tablet) would chain people together: skipped.
device AS (
    SELECT anon, min(user_id) AS user_id
    FROM (SELECT DISTINCT nullif(trim(anonymous_id), '') AS anon, nullif(trim(user_id), '') AS user_id FROM ({ail}) AS ail)
    WHERE anon IS NOT NULL AND user_id IS NOT NULL
    GROUP BY anon HAVING count(*) = 1
),
links AS (
    SELECT r.record_id, a.anchor,
           CASE WHEN r.source = 'app' THEN 'shop_app_user' ELSE 'call_center_customer_ref' END AS rule
    FROM r JOIN account_anchor AS a USING (customer_ref)
    WHERE r.source IN ('app', 'call_center') AND r.record_id <> a.anchor
    UNION ALL
    SELECT r.record_id, c.anchor, 'call_center_card_ref'
    FROM r JOIN card_anchor AS c USING (card_ref)
    WHERE r.source = 'call_center'
    UNION ALL
    -- the userId is the shop customer id: without an app user record the shop account is the anchor
    SELECT a.record_id, coalesce(u.record_id, s.record_id), 'app_anon_user'
    FROM device AS d
    JOIN r AS a ON a.record_id = 'app|anon:' || d.anon
    LEFT JOIN r AS u ON u.record_id = 'app|user:' || d.user_id
    LEFT JOIN r AS s ON s.record_id = 'shop|customer:' || d.user_id
    WHERE coalesce(u.record_id, s.record_id) IS NOT NULL
)
SELECT least(record_id, anchor) AS record_id_l,
       greatest(record_id, anchor) AS record_id_r,
       'inf'::DOUBLE AS match_weight,
       1.0::DOUBLE AS match_probability,
       'deterministic:' || rule AS link_type,
       NULL::VARCHAR AS comparison_detail
FROM links
WHERE record_id <> anchor
QUALIFY row_number() OVER (PARTITION BY least(record_id, anchor), greatest(record_id, anchor) ORDER BY rule) = 1
ORDER BY record_id_l, record_id_r
"""


_RECORD_COLUMNS = ("record_id", "source", "source_key", "shop_customer_id", "loyalty_card_no")


def deterministic_links_sql(records: str = "staging.person_records", identity_links: str | None = "staging.app_identity_links",
                            present: set[str] | None = None) -> str:
    """The query of `deterministic_links` over tables of one connection (the warehouse's, by default):
    nothing is read out. `present`: the columns `records` has (a missing one reads as NULL)."""
    cols = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" if present is None or c in present else f"NULL::VARCHAR AS {c}"
                     for c in _RECORD_COLUMNS)
    ail = ("SELECT CAST(anonymous_id AS VARCHAR) AS anonymous_id, CAST(user_id AS VARCHAR) AS user_id "
           f"FROM {identity_links}" if identity_links
           else "SELECT NULL::VARCHAR AS anonymous_id, NULL::VARCHAR AS user_id WHERE false")
    return _SQL.format(recs=f"SELECT {cols} FROM {records}", ail=ail)


def deterministic_links(records: pd.DataFrame, app_identity_links: pd.DataFrame | None) -> pd.DataFrame:
    """Links that need no scoring: same shop customer id, card reference, anon device stitched to a user.

    A reference to a customer or card that has no record links nothing.
    """
    if records.empty:
        return empty_links()
    recs = records.reindex(columns=list(_RECORD_COLUMNS))
    ail = (
        pd.DataFrame(columns=["anonymous_id", "user_id"])
        if app_identity_links is None
        else app_identity_links.reindex(columns=["anonymous_id", "user_id"])
    )
    con = duckdb.connect()
    try:
        con.register("recs", arrow_table(recs.astype("string[pyarrow]")))
        con.register("ail", arrow_table(ail.astype("string[pyarrow]")))
        links = fetch_pandas(con, deterministic_links_sql("recs", "ail"))
    finally:
        con.close()
    return links[LINK_COLUMNS] if not links.empty else empty_links()
