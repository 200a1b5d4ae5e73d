"""Survivorship: the best value of every attribute per customer (rules in docs/survivorship.md)."""

from collections.abc import Sequence
from datetime import datetime

import duckdb
import pandas as pd
import pyarrow.compute as pc

from customer_pipeline.identity.clustering import arrow_table, fetch_pandas

# Record kinds (`source:key prefix`), most trusted first: what a person typed into their own account
# beats a checkout questionnaire, which beats what an agent or a device picked up.
DEFAULT_SOURCE_PRIORITY = (
    "shop:customer",
    "pos:card",
    "app:user",
    "call_center:contact",
    "shop:guest_order",
    "app:anon",
)

_TEXT = [
    "record_id", "source", "source_key", "first_name", "last_name", "email_corrected",
    "email_suppression_reason", "phone_e164", "phone_type", "gender", "street", "postcode", "city",
    "country", "loyalty_card_no", "shop_customer_id",
]
_BOOL = [
    "email_valid", "email_suppressed", "email_unsubscribed", "phone_valid", "birth_date_valid",
    "marketing_consent", "opted_out", "do_not_call",
]
_TIME = ["marketing_consent_at", "opted_out_at", "record_created_at", "record_updated_at", "birth_date"]
# Every column of staging.person_records a golden row depends on (golden_state.py fingerprints them).
INPUT_COLUMNS = [*_TEXT, *_BOOL, *_TIME]

GOLDEN_COLUMNS = [
    "customer_id", "first_name", "last_name", "display_name", "gender", "birth_date",
    "email", "email_suppressed", "email_unsubscribed", "email_suppression_reason", "phone", "phone_type",
    "street", "postcode", "city", "country",
    "marketing_consent", "marketing_consent_at", "opted_out", "opted_out_at", "do_not_call",
    "sources", "source_record_count", "first_seen_at", "last_seen_at", "loyalty_cards", "shop_customer_ids",
    "data_quality_score", "updated_at",
]


def _prepare(records: pd.DataFrame) -> pd.DataFrame:
    """Only the columns survivorship reads, with their types fixed (missing columns are null)."""
    frame = records.reindex(columns=_TEXT + _BOOL + _TIME).reset_index(drop=True)
    for col in _TEXT:
        frame[col] = frame[col].astype("string[pyarrow]")
    for col in _BOOL:
        frame[col] = frame[col].astype("boolean")
    for col in _TIME:
        frame[col] = pd.to_datetime(frame[col], errors="coerce", utc=True).dt.tz_localize(None)
    return frame


_SQL = """
WITH source_codes AS (
    SELECT source, (row_number() OVER (ORDER BY source) - 1)::UTINYINT AS code
    FROM (SELECT DISTINCT source FROM recs WHERE source IS NOT NULL)
),
r AS (
    SELECT x.customer_id, p.*, sc.code AS source_code,
           coalesce(p.record_updated_at, p.record_created_at) AS ts,
           coalesce(pr.rank, 999) AS prio,
           p.email_corrected IS NOT NULL AND coalesce(p.email_valid, false) AS email_ok,
           coalesce(p.email_suppressed, false) AS email_bad
    FROM xref AS x
    JOIN recs AS p USING (record_id)
    LEFT JOIN prio AS pr ON pr.kind = p.source || ':' || split_part(p.source_key, ':', 1)
    LEFT JOIN source_codes AS sc ON sc.source = p.source
),
phones AS (
    SELECT customer_id, phone_e164,
           count(*) AS n,
           min(CASE phone_type WHEN 'mobile' THEN 0 WHEN 'fixed_line_or_mobile' THEN 1 ELSE 2 END) AS mobile_rank,
           max(ts) AS ts, min(prio) AS prio,
           arg_min(phone_type, prio) AS phone_type
    FROM r WHERE coalesce(phone_valid, false) AND phone_e164 IS NOT NULL
    GROUP BY ALL
),
phone AS (
    SELECT customer_id,
           first({'phone': phone_e164, 'phone_type': phone_type}
                 ORDER BY mobile_rank, n DESC, ts DESC NULLS LAST, prio, phone_e164) AS v
    FROM phones GROUP BY customer_id
),
births AS (
    SELECT customer_id, birth_date::DATE AS birth_date, count(*) AS n, min(prio) AS prio
    FROM r WHERE coalesce(birth_date_valid, true) AND birth_date IS NOT NULL
    GROUP BY ALL
),
birth AS (
    SELECT customer_id, first(birth_date ORDER BY n DESC, prio, birth_date) AS birth_date
    FROM births GROUP BY customer_id
),
genders AS (
    SELECT customer_id, gender, count(*) AS n, min(prio) AS prio
    FROM r WHERE gender IN ('M', 'F', 'X')
    GROUP BY ALL
),
gender AS (
    SELECT customer_id, first(gender ORDER BY n DESC, prio, gender) AS gender
    FROM genders GROUP BY customer_id
),
accounts AS (
    SELECT DISTINCT customer_id, split_part(source_key, ':', 2) AS id, 'shop' AS kind FROM r
    WHERE (source = 'shop' AND source_key LIKE 'customer:%') OR (source = 'app' AND source_key LIKE 'user:%')
    UNION
    SELECT DISTINCT customer_id, coalesce(loyalty_card_no, source_key[6:]) AS id, 'card' AS kind FROM r
    WHERE source = 'pos' AND source_key LIKE 'card:%'
),
account_lists AS (
    SELECT customer_id,
           array_to_string(list_sort(list(id) FILTER (WHERE kind = 'shop')), ',') AS shop_customer_ids,
           array_to_string(list_sort(list(id) FILTER (WHERE kind = 'card')), ',') AS loyalty_cards
    FROM accounts GROUP BY customer_id
),
per_customer AS (
    SELECT customer_id,
           first({'first_name': first_name, 'last_name': last_name}
                 ORDER BY (first_name IS NOT NULL AND last_name IS NOT NULL) DESC, prio, ts DESC NULLS LAST, rn)
               FILTER (WHERE first_name IS NOT NULL OR last_name IS NOT NULL) AS name,
           first({'email': email_corrected, 'unsubscribed': coalesce(email_unsubscribed, false),
                  'suppressed': email_bad, 'reason': email_suppression_reason}
                 ORDER BY email_bad, ts DESC NULLS LAST, prio, rn)
               FILTER (WHERE email_ok) AS mail,
           first({'street': street, 'postcode': postcode, 'city': city, 'country': country}
                 ORDER BY ts DESC NULLS LAST, prio, rn)
               FILTER (WHERE street IS NOT NULL OR postcode IS NOT NULL OR city IS NOT NULL) AS addr,
           coalesce(bool_or(marketing_consent), false) AS any_consent,
           max(marketing_consent_at) FILTER (WHERE marketing_consent) AS marketing_consent_at,
           coalesce(bool_or(opted_out), false) OR coalesce(bool_or(email_unsubscribed), false) AS opted_out,
           max(opted_out_at) AS opted_out_at,
           coalesce(bool_or(do_not_call), false) AS do_not_call,
           -- a bit per source: far cheaper than aggregating strings; decoded in source_sets
           bit_or(1::UBIGINT << source_code) AS source_mask,
           count(*) AS source_record_count,
           -- a date beyond tomorrow is a data error (staging nulls it; this guards other inputs)
           min(coalesce(record_created_at, record_updated_at))
               FILTER (WHERE coalesce(record_created_at, record_updated_at) <= $now::TIMESTAMP + INTERVAL 1 DAY)
               AS first_seen_at,
           max(coalesce(record_updated_at, record_created_at))
               FILTER (WHERE coalesce(record_updated_at, record_created_at) <= $now::TIMESTAMP + INTERVAL 1 DAY)
               AS last_seen_at
    FROM r GROUP BY customer_id
),
source_sets AS (
    SELECT m.source_mask, string_agg(sc.source, ',' ORDER BY sc.source) AS sources
    FROM (SELECT DISTINCT source_mask FROM per_customer) AS m
    JOIN source_codes AS sc ON (m.source_mask >> sc.code) & 1 = 1
    GROUP BY m.source_mask
),
golden AS (
    SELECT c.customer_id,
           c.name.first_name AS first_name,
           c.name.last_name AS last_name,
           nullif(concat_ws(' ', c.name.first_name, c.name.last_name), '') AS display_name,
           g.gender,
           b.birth_date,
           c.mail.email AS email,
           coalesce(c.mail.suppressed, false) AS email_suppressed,
           coalesce(c.mail.unsubscribed, false) AS email_unsubscribed,
           c.mail.reason AS email_suppression_reason,
           ph.v.phone AS phone,
           ph.v.phone_type AS phone_type,
           c.addr.street AS street, c.addr.postcode AS postcode, c.addr.city AS city, c.addr.country AS country,
           c.any_consent AND NOT c.opted_out AS marketing_consent,
           c.marketing_consent_at,
           c.opted_out, c.opted_out_at, c.do_not_call,
           ss.sources, c.source_record_count, c.first_seen_at, c.last_seen_at,
           a.loyalty_cards, a.shop_customer_ids
    FROM per_customer AS c
    LEFT JOIN phone AS ph USING (customer_id)
    LEFT JOIN birth AS b USING (customer_id)
    LEFT JOIN gender AS g USING (customer_id)
    LEFT JOIN account_lists AS a USING (customer_id)
    LEFT JOIN source_sets AS ss USING (source_mask)
)
SELECT *,
       round((
           (first_name IS NOT NULL AND last_name IS NOT NULL)::INT
           + (email IS NOT NULL AND NOT email_suppressed)::INT
           + (phone IS NOT NULL)::INT
           + (street IS NOT NULL AND postcode IS NOT NULL AND city IS NOT NULL AND country IS NOT NULL)::INT
           + (birth_date IS NOT NULL)::INT
           + (gender IS NOT NULL)::INT
       ) / 6.0, 3) AS data_quality_score,
       $now::TIMESTAMP AS updated_at
FROM golden
ORDER BY customer_id
"""


def build_golden(
    records: pd.DataFrame,
    xref: pd.DataFrame,
    now: datetime,
    source_priority: Sequence[str] = DEFAULT_SOURCE_PRIORITY,
) -> pd.DataFrame:
    """One row per customer_id with the surviving value of every attribute, consent state and lineage."""
    recs = _prepare(records)
    prio = pd.DataFrame({"kind": list(source_priority), "rank": range(len(source_priority))})
    links = xref[["customer_id", "record_id"]]
    table = arrow_table(recs)
    # Integer rank of record_id: the last tie-breaker, much cheaper to sort on than the text.
    table = table.append_column("rn", pc.rank(table["record_id"], sort_keys="ascending", tiebreaker="first"))
    con = duckdb.connect()
    try:
        con.register("recs", table)
        con.register("xref", arrow_table(links))
        con.register("prio", prio)
        golden = fetch_pandas(con, _SQL, {"now": pd.Timestamp(now).to_pydatetime()})
    finally:
        con.close()
    return golden[GOLDEN_COLUMNS]
