"""Contactable audiences and demographics: `gold.marketing_audience` and `gold.customer_demographics`.

The SQL is in `sql/marketing_audience.sql` and `sql/customer_demographics.sql`; this module prepares the
temporary inputs they read, runs them (`models.build`), and recomputes, independently of that SQL, what no
audience row may allow (`violations`, the blocking check).
"""

import datetime as dt

import duckdb

from customer_pipeline.marts import models
from customer_pipeline.staging.suppression import POSTCODE_KEY, STREET_KEY
from customer_pipeline.warehouse import table_exists

AUDIENCE, DEMOGRAPHICS = "marketing_audience", "customer_demographics"
CHANNELS = ("email", "phone", "post")
# strongest first: `reason` is the first of these that applies (docs/marts.md)
REASONS = ("erased", "opted out", "on suppression register", "do-not-call", "email bounced or complained",
           "no consent", "no valid value", "household already mailed")
AUDIENCE_INPUTS = ("gold.golden_customers", "gold.customer_xref", "gold.households", "staging.person_records",
                   "staging.suppression_entries")
EXAMPLES = 5


def household_keys(con: duckdb.DuckDBPyConnection) -> None:
    """TEMP audience_household_keys: each household's address as the register's match keys."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE audience_household_keys AS
        SELECT household_id, {STREET_KEY} AS street_key, {POSTCODE_KEY} AS postcode_key, country
        FROM (SELECT household_id, address AS street, postcode, country FROM gold.households)""")


def erased_customers(con: duckdb.DuckDBPyConnection) -> int:
    """TEMP audience_erased: golden customers an identifier of which is on the erasure register (a person
    erased whose records came back unscreened); empty when nobody was ever erased. Returns its rows."""
    con.execute("CREATE OR REPLACE TEMP TABLE audience_erased (customer_id VARCHAR)")
    if not (table_exists(con, "meta.erasure_register") and table_exists(con, "meta.erasure_secret")):
        return 0
    if not con.execute("SELECT count(*) FROM meta.erasure_register").fetchall()[0][0]:
        return 0
    from customer_pipeline.erasure.register import Hasher  # only where someone was erased

    secret = con.execute("SELECT secret FROM meta.erasure_secret ORDER BY created_at LIMIT 1").fetchall()
    if not secret:
        return 0
    hasher = Hasher(bytes.fromhex(secret[0][0]))
    held = con.execute("""
        SELECT customer_id, 'email', email FROM gold.golden_customers WHERE email IS NOT NULL
        UNION ALL SELECT customer_id, 'phone', phone FROM gold.golden_customers WHERE phone IS NOT NULL
        UNION ALL SELECT customer_id, 'source_key', record_id FROM gold.customer_xref""").fetchall()
    registered = {h for (h,) in con.execute("SELECT identifier_hash FROM meta.erasure_register").fetchall()}
    erased = sorted({c for c, kind, value in held if hasher(kind, value) in registered})
    if erased:
        con.executemany("INSERT INTO audience_erased VALUES (?)", [[c] for c in erased])
    return len(erased)


def build_marketing_audience(con: duckdb.DuckDBPyConnection, today: dt.date) -> int:
    household_keys(con)
    erased_customers(con)
    return models.build(con, AUDIENCE, {"today": today})


def build_customer_demographics(con: duckdb.DuckDBPyConnection, today: dt.date) -> int:
    if table_exists(con, "gold.customer_rfm"):
        con.execute("CREATE OR REPLACE TEMP VIEW demographics_rfm AS "
                    "SELECT customer_id, segment FROM gold.customer_rfm")
    else:
        con.execute("CREATE OR REPLACE TEMP VIEW demographics_rfm AS "
                    "SELECT CAST(NULL AS VARCHAR) AS customer_id, CAST(NULL AS VARCHAR) AS segment WHERE false")
    return models.build(con, DEMOGRAPHICS, {"today": today})


def _dicts(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def channel_figures(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per channel: customers who may be contacted and who may not."""
    return _dicts(con, f"""
        SELECT channel, count(*) FILTER (WHERE may_contact) AS may_contact,
            count(*) FILTER (WHERE NOT may_contact) AS may_not
        FROM gold.{AUDIENCE} GROUP BY channel
        ORDER BY CASE channel WHEN 'email' THEN 1 WHEN 'phone' THEN 2 ELSE 3 END""")


def reason_figures(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per channel and reason (the first that applies): customers who may not be contacted."""
    order = " ".join(f"WHEN '{r}' THEN {i}" for i, r in enumerate(REASONS))
    return _dicts(con, f"""
        SELECT channel, reason, count(*) AS customers FROM gold.{AUDIENCE} WHERE NOT may_contact
        GROUP BY channel, reason ORDER BY min(CASE channel WHEN 'email' THEN 1 WHEN 'phone' THEN 2 ELSE 3 END),
            min(CASE reason {order} END)""")


def register_figures(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per register and channel: audience rows it matches (whatever else blocks them)."""
    return _dicts(con, f"""
        SELECT trim(register) AS register, channel, count(*) AS customers
        FROM (SELECT unnest(string_split(suppression_registers, ',')) AS register, channel
              FROM gold.{AUDIENCE} WHERE suppression_registers IS NOT NULL)
        GROUP BY ALL ORDER BY ALL""")


# What no audience row may allow, recomputed from staging, the registers and the golden contact values
# (never from the mart's own flags): each query lists (customer_id, channel) of the offending rows.
VIOLATIONS = {
    "allowed_despite_opt_out": """
        SELECT a.customer_id, a.channel FROM gold.marketing_audience AS a
        WHERE a.may_contact AND a.customer_id IN (
            SELECT x.customer_id FROM gold.customer_xref AS x JOIN staging.person_records AS p USING (record_id)
            WHERE p.opted_out OR p.email_unsubscribed)""",
    "allowed_despite_consent_refused_or_missing": """
        SELECT a.customer_id, a.channel FROM gold.marketing_audience AS a
        WHERE a.may_contact AND a.customer_id NOT IN (
            SELECT x.customer_id FROM gold.customer_xref AS x JOIN staging.person_records AS p USING (record_id)
            GROUP BY 1 HAVING coalesce(bool_or(p.marketing_consent), false)
                AND NOT coalesce(bool_or(NOT p.marketing_consent), false))""",
    "phone_allowed_despite_do_not_call": """
        SELECT a.customer_id, a.channel FROM gold.marketing_audience AS a
        WHERE a.may_contact AND a.channel = 'phone' AND a.customer_id IN (
            SELECT x.customer_id FROM gold.customer_xref AS x JOIN staging.person_records AS p USING (record_id)
            WHERE p.do_not_call)""",
    "email_allowed_despite_bounce_or_complaint": """
        SELECT a.customer_id, a.channel FROM gold.marketing_audience AS a
        WHERE a.may_contact AND a.channel = 'email' AND lower(a.contact_value) IN (
            SELECT lower(coalesce(email_corrected, email)) FROM staging.person_records WHERE email_suppressed)""",
    # one equi-join per channel (an EXISTS over an OR of the three would compare every row with every entry)
    "allowed_despite_suppression_register": f"""
        SELECT a.customer_id, a.channel FROM gold.marketing_audience AS a
        JOIN gold.golden_customers AS g USING (customer_id)
        JOIN staging.suppression_entries AS s ON s.matchable AND s.kind = 'email' AND lower(s.email) = lower(g.email)
        WHERE a.may_contact AND a.channel = 'email'
        UNION ALL
        SELECT a.customer_id, a.channel FROM gold.marketing_audience AS a
        JOIN gold.golden_customers AS g USING (customer_id)
        JOIN staging.suppression_entries AS s ON s.matchable AND s.kind = 'phone' AND s.phone_e164 = g.phone
        WHERE a.may_contact AND a.channel = 'phone'
        UNION ALL
        SELECT a.customer_id, a.channel FROM gold.marketing_audience AS a
        JOIN gold.golden_customers AS g USING (customer_id)
        JOIN (SELECT household_id, {STREET_KEY} AS street_key, {POSTCODE_KEY} AS postcode_key, country
              FROM (SELECT household_id, address AS street, postcode, country FROM gold.households)) AS h
            ON h.household_id = g.household_id
        JOIN staging.suppression_entries AS s ON s.matchable AND s.kind = 'postal' AND s.street_key = h.street_key
            AND s.postcode_key = h.postcode_key
            AND (s.country IS NULL OR h.country IS NULL OR s.country = h.country)
        WHERE a.may_contact AND a.channel = 'post'""",
    "allowed_without_a_contact_value": """
        SELECT a.customer_id, a.channel FROM gold.marketing_audience AS a
        JOIN gold.golden_customers AS g USING (customer_id)
        WHERE a.may_contact AND (CASE a.channel WHEN 'email' THEN g.email WHEN 'phone' THEN g.phone
                                 ELSE g.household_id END) IS NULL""",
    "contact_value_not_the_golden_one": """
        SELECT a.customer_id, a.channel FROM gold.marketing_audience AS a
        JOIN gold.golden_customers AS g USING (customer_id)
        WHERE (a.channel = 'email' AND a.contact_value IS DISTINCT FROM g.email)
           OR (a.channel = 'phone' AND a.contact_value IS DISTINCT FROM g.phone)
           OR (a.channel = 'post' AND a.household_id IS DISTINCT FROM g.household_id)""",
    "household_mailed_twice": """
        SELECT customer_id, channel FROM gold.marketing_audience
        WHERE channel = 'post' AND may_contact AND household_id IN (
            SELECT household_id FROM gold.marketing_audience WHERE channel = 'post' AND may_contact
            GROUP BY 1 HAVING count(*) > 1)""",
    "customer_not_in_golden_customers": """
        SELECT a.customer_id, a.channel FROM gold.marketing_audience AS a
        WHERE a.customer_id IS NULL
           OR NOT EXISTS (SELECT 1 FROM gold.golden_customers AS g WHERE g.customer_id = a.customer_id)""",
    "golden_customer_without_its_three_rows": """
        SELECT g.customer_id, c.channel FROM gold.golden_customers AS g
        CROSS JOIN (SELECT unnest(['email', 'phone', 'post']) AS channel) AS c
        LEFT JOIN (SELECT customer_id, channel, count(*) AS n FROM gold.marketing_audience GROUP BY ALL) AS a
            ON a.customer_id = g.customer_id AND a.channel = c.channel
        WHERE coalesce(a.n, 0) <> 1""",
}


def violations(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, list[str]]]:
    """Per rule: offending rows and up to `EXAMPLES` of them as `customer_id/channel` (ids only, no contact)."""
    out = {}
    for name, sql in VIOLATIONS.items():
        rows = con.execute(f"SELECT DISTINCT * FROM ({sql}) ORDER BY ALL").fetchall()
        out[name] = (len(rows), [f"{c}/{ch}" for c, ch in rows[:EXAMPLES]])
    return out


def missing_inputs(con: duckdb.DuckDBPyConnection, *extra: str) -> list[str]:
    return [t for t in (*AUDIENCE_INPUTS, *extra) if not table_exists(con, t)]
