"""One row per person-describing source record (the standardiser's input), and the staging tables
the identity stage needs: app identity links, parsed call-center account refs, orders, receipts.

Source keys follow docs/SOURCES.md. Where a record was delivered more than once
(a card re-sent in a later file, a contact repeated in the next export) the latest delivery wins.
"""

import hashlib

import duckdb
import pandas as pd

from customer_pipeline.warehouse import table_exists, transaction

# the file date in a delivered name orders re-deliveries: latest file wins, then latest line (every term
# descending: a single DESC after the list ordered only the line, so the earliest file won)
_FILE_ORDER = ("regexp_extract(_location, '(\\d{4}-\\d{2}-\\d{2}(T\\d{2})?)', 1) DESC, _location DESC, "
               "try_cast(_record_ref AS BIGINT) DESC")

REQUIRED_RAW = (
    "raw.pos_loyalty_signups", "raw.shop_customers", "raw.shop_addresses", "raw.shop_orders",
    "raw.call_center_contacts", "raw.app_events", "raw.app_identifies", "raw.app_aliases", "raw.shop_email_events",
)

APP_IDENTITY_LINKS = """
CREATE OR REPLACE TABLE staging.app_identity_links AS
SELECT anonymous_id, user_id, min(link_kind) AS link_kind, min(first_seen) AS first_seen FROM (
    SELECT anonymous_id, user_id, type AS link_kind, try_cast("timestamp" AS TIMESTAMP) AS first_seen
    FROM raw.app_events WHERE anonymous_id IS NOT NULL AND user_id IS NOT NULL
    UNION ALL
    SELECT previous_id, user_id, 'alias', try_cast("timestamp" AS TIMESTAMP) FROM raw.app_aliases
) GROUP BY anonymous_id, user_id ORDER BY anonymous_id, user_id
"""

ACCOUNT_REFS = f"""
CREATE OR REPLACE TABLE staging.call_center_account_refs AS
WITH latest AS (
    SELECT * FROM raw.call_center_contacts
    QUALIFY row_number() OVER (PARTITION BY contact_id ORDER BY {_FILE_ORDER}) = 1
), parsed AS (
    SELECT contact_id, account_ref,
        regexp_extract(trim(account_ref), '^[Cc]\\s*-?\\s*(\\d+)$', 1) AS prefixed_customer,
        regexp_extract(trim(account_ref), '^(\\d+)$', 1) AS digits
    FROM latest WHERE nullif(trim(account_ref), '') IS NOT NULL
)
SELECT p.contact_id, p.account_ref,
    CASE WHEN c.id IS NOT NULL THEN 'shop_customer' WHEN l.card_no IS NOT NULL THEN 'loyalty_card'
         ELSE 'unresolved' END AS ref_kind,
    c.id AS shop_customer_id, l.card_no AS loyalty_card_no
FROM parsed p
LEFT JOIN (SELECT DISTINCT card_no FROM raw.pos_loyalty_signups) l
    ON p.prefixed_customer = '' AND l.card_no = trim(p.account_ref)
LEFT JOIN (SELECT DISTINCT id FROM raw.shop_customers) c
    ON l.card_no IS NULL AND c.id = coalesce(nullif(p.prefixed_customer, ''), nullif(ltrim(p.digits, '0'), ''))
ORDER BY p.contact_id
"""

SHOP_ORDERS = """
CREATE OR REPLACE TABLE staging.shop_orders AS
SELECT try_cast(id AS BIGINT) AS order_id,
    CASE WHEN customer_id IS NOT NULL THEN 'customer:' || customer_id ELSE 'guest_order:' || id END AS source_key,
    try_cast(customer_id AS BIGINT) AS customer_id, status, try_cast(placed_at AS TIMESTAMP) AS placed_at,
    try_cast(total AS DECIMAL(12, 2)) AS total, currency
FROM raw.shop_orders ORDER BY order_id
"""

# The receipt lines as delivered last; `{where}` narrows the raw rows to some receipts (whole receipts: the
# latest delivery of a line is chosen among the rows of its receipt).
_POS_LINES = f"""
SELECT store_id, receipt_id, try_cast(line_no AS INTEGER) AS line_no,
    try_cast(sold_at AS TIMESTAMPTZ) AS sold_at,
    CASE WHEN nullif(trim(card_no), '') IS NOT NULL THEN 'card:' || trim(card_no) END AS source_key,
    sku, try_cast(qty AS INTEGER) AS qty, try_cast(unit_price AS DECIMAL(12, 2)) AS unit_price,
    try_cast(discount AS DECIMAL(12, 2)) AS discount, currency, try_cast(bonus_points AS INTEGER) AS bonus_points
FROM raw.pos_transactions AS r {{where}}
QUALIFY row_number() OVER (PARTITION BY store_id, receipt_id, line_no ORDER BY {_FILE_ORDER}) = 1
ORDER BY store_id, receipt_id, line_no
"""
POS_TRANSACTIONS = "CREATE OR REPLACE TABLE staging.pos_transactions AS " + _POS_LINES.replace("{where}", "")

PERSON_SOURCE = f"""
WITH pos AS (
    SELECT * FROM raw.pos_loyalty_signups
    QUALIFY row_number() OVER (PARTITION BY card_no ORDER BY {_FILE_ORDER}) = 1
), addr AS (
    SELECT * FROM raw.shop_addresses
    QUALIFY row_number() OVER (PARTITION BY customer_id
        ORDER BY (kind = 'billing') DESC, updated_at DESC, try_cast(id AS BIGINT) DESC) = 1
), last_order AS (
    SELECT customer_id, ship_country FROM raw.shop_orders WHERE customer_id IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY updated_at DESC) = 1
), contacts AS (
    SELECT * FROM raw.call_center_contacts
    QUALIFY row_number() OVER (PARTITION BY contact_id ORDER BY {_FILE_ORDER}) = 1
), ref_country AS (
    SELECT r.contact_id, coalesce(p.country, a.country) AS country
    FROM staging.call_center_account_refs r
    LEFT JOIN pos p ON p.card_no = r.loyalty_card_no
    LEFT JOIN addr a ON a.customer_id = r.shop_customer_id
), identifies AS (
    SELECT *, CASE WHEN user_id IS NOT NULL THEN 'user:' || user_id ELSE 'anon:' || anonymous_id END AS key
    FROM raw.app_identifies
), app AS (
    SELECT key,
        max_by(user_id, "timestamp") FILTER (WHERE user_id IS NOT NULL) AS user_id,
        max_by(anonymous_id, "timestamp") FILTER (WHERE user_id IS NULL) AS anonymous_id,
        max_by(email, "timestamp") FILTER (WHERE email IS NOT NULL) AS email,
        max_by(first_name, "timestamp") FILTER (WHERE first_name IS NOT NULL) AS first_name,
        max_by(last_name, "timestamp") FILTER (WHERE last_name IS NOT NULL) AS last_name,
        max_by(phone, "timestamp") FILTER (WHERE phone IS NOT NULL) AS phone,
        max_by(birthday, "timestamp") FILTER (WHERE birthday IS NOT NULL) AS birthday,
        max_by(street, "timestamp") FILTER (WHERE street IS NOT NULL) AS street,
        max_by(city, "timestamp") FILTER (WHERE city IS NOT NULL) AS city,
        max_by(postal_code, "timestamp") FILTER (WHERE postal_code IS NOT NULL) AS postal_code,
        max_by(country, "timestamp") FILTER (WHERE country IS NOT NULL) AS country,
        string_agg(DISTINCT non_text_traits, ',') AS non_text_traits,
        min("timestamp") AS first_ts, max("timestamp") AS last_ts
    FROM identifies GROUP BY key
)
SELECT 'pos' AS source, 'card:' || card_no AS source_key, country AS default_country,
    first_name AS first_name_raw, last_name AS last_name_raw, NULL AS full_name_raw,
    email AS email_raw, phone AS phone_raw, birth_date AS birth_date_raw, gender AS gender_raw,
    NULL AS street_raw, postcode AS postcode_raw, city AS city_raw, country AS country_raw,
    marketing_consent AS marketing_consent_raw, signed_up_at AS marketing_consent_at_raw,
    NULL AS opt_out_at_raw, NULL AS do_not_call_raw,
    signed_up_at AS record_created_at_raw, signed_up_at AS record_updated_at_raw,
    card_no AS loyalty_card_no, NULL AS shop_customer_id, NULL AS anonymous_id, NULL AS non_text_fields_raw
FROM pos
UNION ALL
SELECT 'shop', 'customer:' || c.id, coalesce(a.country, o.ship_country),
    c.first_name, c.last_name, NULL, c.email, c.phone, c.birth_date, c.gender,
    trim(concat_ws(' ', a.line1, a.line2)), a.postcode, a.city, a.country,
    c.marketing_opt_in, c.updated_at, NULL, NULL, c.created_at, c.updated_at,
    NULL, c.id, NULL, NULL
FROM raw.shop_customers c LEFT JOIN addr a ON a.customer_id = c.id LEFT JOIN last_order o ON o.customer_id = c.id
UNION ALL
SELECT 'shop', 'guest_order:' || id, ship_country,
    guest_first_name, guest_last_name, NULL, guest_email, guest_phone, NULL, NULL,
    ship_line1, ship_postcode, ship_city, ship_country,
    NULL, NULL, NULL, NULL, placed_at, updated_at, NULL, NULL, NULL, NULL
FROM raw.shop_orders WHERE customer_id IS NULL
UNION ALL
SELECT 'call_center', 'contact:' || k.contact_id, rc.country,
    NULL, NULL, k.caller_name, k.caller_email, k.caller_phone, NULL, NULL,
    NULL, NULL, NULL, NULL,
    NULL, NULL, CASE WHEN k.reason = 'opt_out' THEN k.started_at END, k.do_not_call,
    k.started_at, coalesce(k.ended_at, k.started_at),
    r.loyalty_card_no, r.shop_customer_id, NULL, NULL
FROM contacts k
LEFT JOIN staging.call_center_account_refs r USING (contact_id)
LEFT JOIN ref_country rc USING (contact_id)
WHERE nullif(trim(k.caller_name), '') IS NOT NULL OR nullif(trim(k.caller_phone), '') IS NOT NULL
   OR nullif(trim(k.caller_email), '') IS NOT NULL
UNION ALL
SELECT 'app', key, country,
    first_name, last_name, NULL, email, phone, birthday, NULL,
    street, postal_code, city, country,
    NULL, NULL, NULL, NULL, first_ts, last_ts,
    NULL, user_id, anonymous_id, non_text_traits
FROM app
ORDER BY source, source_key
"""


def missing_raw_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [t for t in REQUIRED_RAW if not table_exists(con, t)]


# The raw file versions (location, content hash, rows) `staging.pos_transactions` was last built from, and the
# version of the SQL that built it.
POS_STATE = "meta.staging_pos_transactions_files"
_POS_VERSION = hashlib.sha256(_POS_LINES.encode()).hexdigest()[:16]
_SAME_FILE = "s.location IS NOT DISTINCT FROM c.location AND s.content_hash IS NOT DISTINCT FROM c.content_hash"


def build_pos_transactions(con: duckdb.DuckDBPyConnection, full: bool = False) -> str:
    """Bring `staging.pos_transactions` up to date with `raw.pos_transactions`; returns what was done.

    Receipt lines only ever arrive in new files, so when every file version the table was built from is
    still in raw with all its rows, only the receipts the new versions hold are built again (4.6 million
    lines at 1M customers took 4 s to rebuild whole). A version that lost rows or left raw (a corrected
    file replaced it), a changed query, or `full` rebuild the whole table. An erasure blanks the card in
    raw and staging alike and keeps the rows, so it needs nothing here."""
    con.execute("""CREATE OR REPLACE TEMP TABLE _pos_files AS SELECT _location AS location,
        _content_hash AS content_hash, count(*) AS n FROM raw.pos_transactions GROUP BY ALL""")
    try:
        usable = not full and table_exists(con, POS_STATE) and table_exists(con, "staging.pos_transactions")
        if usable:
            usable = con.execute(f"""SELECT count(*) FROM {POS_STATE} AS s WHERE s.version <> ? OR NOT EXISTS (
                SELECT 1 FROM _pos_files AS c WHERE {_SAME_FILE} AND c.n = s.n)""", [_POS_VERSION]).fetchall()[0][0] == 0
        with transaction(con):  # the table and the file versions it was built from land together
            done = _update_pos_transactions(con, usable)
            con.execute(f"CREATE OR REPLACE TABLE {POS_STATE} AS SELECT *, ? AS version FROM _pos_files",
                        [_POS_VERSION])
    finally:
        con.execute("DROP TABLE IF EXISTS _pos_files")
    return done


def _update_pos_transactions(con: duckdb.DuckDBPyConnection, incremental: bool) -> str:
    if not incremental:
        con.execute(POS_TRANSACTIONS)
        return "full"
    # the receipts of the file versions the table was not built from
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _pos_receipts AS
        SELECT DISTINCT store_id, receipt_id FROM raw.pos_transactions AS r
        WHERE EXISTS (SELECT 1 FROM _pos_files AS c WHERE c.location IS NOT DISTINCT FROM r._location
                      AND c.content_hash IS NOT DISTINCT FROM r._content_hash
                      AND NOT EXISTS (SELECT 1 FROM {POS_STATE} AS s WHERE {_SAME_FILE}))""")
    try:
        receipts = con.execute("SELECT count(*) FROM _pos_receipts").fetchall()[0][0]
        if receipts:
            touched = ("EXISTS (SELECT 1 FROM _pos_receipts AS k WHERE k.store_id IS NOT DISTINCT FROM {t}.store_id "
                       "AND k.receipt_id IS NOT DISTINCT FROM {t}.receipt_id)")
            con.execute(f"DELETE FROM staging.pos_transactions AS p WHERE {touched.format(t='p')}")
            con.execute("INSERT INTO staging.pos_transactions BY NAME "
                        + _POS_LINES.replace("{where}", "WHERE " + touched.format(t="r")))
    finally:
        con.execute("DROP TABLE IF EXISTS _pos_receipts")
    return f"incremental: {receipts} receipts built again"


def build_link_tables(con: duckdb.DuckDBPyConnection, full: bool = False) -> dict[str, int]:
    """The SQL-only staging tables; returns their row counts (and, under `pos_transactions_build`, how
    `staging.pos_transactions` was brought up to date)."""
    counts = {}
    for name, sql in (
        ("staging.app_identity_links", APP_IDENTITY_LINKS),
        ("staging.call_center_account_refs", ACCOUNT_REFS),
        ("staging.shop_orders", SHOP_ORDERS),
        ("staging.pos_transactions", None),
    ):
        if sql is None:
            counts["pos_transactions_build"] = build_pos_transactions(con, full)
        else:
            con.execute(sql)
        counts[name] = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
    return counts


def person_source(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The unified raw frame (docs/staging-contract.md, input side); needs the link tables first."""
    return con.execute(PERSON_SOURCE).df()


def email_events(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute(
        "SELECT email, kind, try_cast(occurred_at AS TIMESTAMP) AS occurred_at FROM raw.shop_email_events"
    ).df()
