"""`staging.suppression_entries`: the current snapshot of every preference register, values standardised.

A register is delivered as full snapshots (docs/SOURCES.md): of the files of one register loaded without a
file-level error, the one with the newest date in its name is in force and replaces the older ones (which
stay in raw). A snapshot rejected whole leaves the previous one in force: a broken delivery never lifts a
block. Values are standardised as staging does for person records, so they compare with golden values:
phones to E.164 with the row's country as default region, emails normalised (domain typos corrected as for
records), postal lines cleaned, postcodes in the country's form, plus match keys (street normalised as the
household builder does, postcode without spaces).
"""

import duckdb
import pandas as pd

from customer_pipeline.identity.splink_model import _street_expr
from customer_pipeline.ingest.formats import SUPPRESSION
from customer_pipeline.standardize._text import clean_text, map_unique
from customer_pipeline.standardize.addresses import normalize_country, normalize_postcode
from customer_pipeline.standardize.emails import standardize_emails
from customer_pipeline.standardize.phones import standardize_phones
from customer_pipeline.warehouse import table_exists, transaction

TABLE = "staging.suppression_entries"
# the file name carries the register and the snapshot date: <register>_<YYYY-MM-DD>.csv
_NAME = r"([^/]+)_(\d{4}-\d{2}-\d{2})\.csv$"

CURRENT_ROWS = f"""
WITH files AS (
    SELECT location,
        lower(regexp_extract(location, '{_NAME}', 1)) AS register,
        try_cast(regexp_extract(location, '{_NAME}', 2) AS DATE) AS snapshot_date
    FROM meta.loaded_files WHERE family = '{SUPPRESSION.name}' AND file_error IS NULL
), current_files AS (
    SELECT * FROM files WHERE register <> '' AND snapshot_date IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY register ORDER BY snapshot_date DESC, location DESC) = 1
)
SELECT f.register, f.snapshot_date, lower(trim(r.kind)) AS kind, r.value, r.postcode AS postcode_raw,
    r.country AS country_raw, try_cast(nullif(trim(r.listed_at), '') AS DATE) AS listed_at,
    r._location, r._record_ref
FROM raw.{SUPPRESSION.name} AS r JOIN current_files AS f ON f.location = r._location
ORDER BY f.register, r._location, try_cast(r._record_ref AS BIGINT)
"""

COLUMNS = [
    "register", "snapshot_date", "kind", "value", "country", "listed_at", "phone_e164", "phone_valid",
    "email", "email_valid", "street", "postcode", "street_key", "postcode_key", "match_value", "matchable",
    "_location", "_record_ref",
]

# the normalised street and postcode the household builder compares addresses by (docs/households.md)
STREET_KEY = f"nullif(trim({_street_expr()}), '')"
POSTCODE_KEY = "nullif(upper(regexp_replace(CAST(postcode AS VARCHAR), '[^A-Za-z0-9]+', '', 'g')), '')"


def standardize_entries(rows: pd.DataFrame) -> pd.DataFrame:
    """The register rows with their standardised values (one output row per input row)."""
    rows = rows.reset_index(drop=True)
    country = map_unique(rows["country_raw"], normalize_country)
    kind = rows["kind"]
    phone_in = rows["value"].where(kind == "phone")
    email_in = rows["value"].where(kind == "email")
    postal = kind == "postal"
    phones = standardize_phones(phone_in, country)
    emails = standardize_emails(email_in)
    street = map_unique(rows["value"].where(postal), clean_text)
    postcode = pd.Series([normalize_postcode(p, c) if is_postal else None
                          for p, c, is_postal in zip(rows["postcode_raw"], country, postal)], dtype=object)
    return pd.DataFrame({
        "register": rows["register"], "snapshot_date": rows["snapshot_date"], "kind": kind, "value": rows["value"],
        "country": country, "listed_at": rows["listed_at"],
        "phone_e164": phones["phone_e164"], "phone_valid": phones["phone_valid"],
        # as staging matches email events: the corrected address where a domain typo was fixed
        "email": emails["email_corrected"].where(emails["email_corrected"].notna(), emails["email"]),
        "email_valid": emails["email_valid"],
        "street": street, "postcode": postcode,
        "_location": rows["_location"], "_record_ref": rows["_record_ref"],
    })


def build_suppression_entries(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rebuild `staging.suppression_entries`; returns counts (rows, registers, matchable rows per kind)."""
    if table_exists(con, f"raw.{SUPPRESSION.name}") and table_exists(con, "meta.loaded_files"):
        rows = con.execute(CURRENT_ROWS).df()
    else:  # no register ever loaded: an empty table, so the audience reads it like any other
        rows = pd.DataFrame(columns=["register", "snapshot_date", "kind", "value", "postcode_raw", "country_raw",
                                     "listed_at", "_location", "_record_ref"])
    frame = standardize_entries(rows)
    con.register("_entries", frame)
    try:
        with transaction(con):
            con.execute(f"""
                CREATE OR REPLACE TABLE {TABLE} AS
                WITH keyed AS (
                    SELECT CAST(register AS VARCHAR) AS register, CAST(snapshot_date AS DATE) AS snapshot_date,
                        CAST(kind AS VARCHAR) AS kind, CAST(value AS VARCHAR) AS value,
                        CAST(country AS VARCHAR) AS country, CAST(listed_at AS DATE) AS listed_at,
                        CAST(phone_e164 AS VARCHAR) AS phone_e164, CAST(phone_valid AS BOOLEAN) AS phone_valid,
                        CAST(email AS VARCHAR) AS email, CAST(email_valid AS BOOLEAN) AS email_valid,
                        CAST(street AS VARCHAR) AS street, CAST(postcode AS VARCHAR) AS postcode,
                        CAST(_location AS VARCHAR) AS _location, CAST(_record_ref AS VARCHAR) AS _record_ref
                    FROM _entries
                ), with_keys AS (
                    SELECT *, {STREET_KEY} AS street_key, {POSTCODE_KEY} AS postcode_key FROM keyed
                ), final AS (
                    SELECT *,
                        CASE kind WHEN 'phone' THEN phone_e164 WHEN 'email' THEN email
                            WHEN 'postal' THEN CASE WHEN street_key IS NOT NULL AND postcode_key IS NOT NULL
                                                    THEN street_key || '|' || postcode_key END END AS match_value,
                        -- a phone only as a possible number, an email only with an '@': else it matches nobody
                        CASE kind WHEN 'phone' THEN phone_e164 IS NOT NULL
                            WHEN 'email' THEN coalesce(email LIKE '%_@_%', false)
                            ELSE street_key IS NOT NULL AND postcode_key IS NOT NULL END AS matchable
                    FROM with_keys
                )
                SELECT {', '.join(COLUMNS)} FROM final ORDER BY register, _location, try_cast(_record_ref AS BIGINT)
            """)
    finally:
        con.unregister("_entries")
    counts = con.execute(f"""SELECT count(*), count(DISTINCT register),
        count(*) FILTER (WHERE matchable AND kind = 'phone'), count(*) FILTER (WHERE matchable AND kind = 'email'),
        count(*) FILTER (WHERE matchable AND kind = 'postal'), count(*) FILTER (WHERE NOT matchable)
        FROM {TABLE}""").fetchall()[0]
    return dict(zip(("rows", "registers", "phones", "emails", "postal", "not_matchable"), (int(v) for v in counts)))


def register_summary(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(register, snapshot date, kind, rows, matchable rows) of the snapshots in force."""
    return con.execute(f"""SELECT register, snapshot_date, kind, count(*), count(*) FILTER (WHERE matchable)
        FROM {TABLE} GROUP BY ALL ORDER BY ALL""").fetchall()
