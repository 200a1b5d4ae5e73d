"""Households: the golden customers who live at one address, with ids that survive from run to run.

Rules, the cap and the id rules are in docs/households.md; the tests in
customer_pipeline_tests/test_households.py pin every one of them.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from customer_pipeline.identity.clustering import arrow_table, fetch_pandas, typed_frame
from customer_pipeline.identity.ids import mint_ids
from customer_pipeline.identity.splink_model import _street_expr
from customer_pipeline.warehouse import table_exists

# More customers than this at one address are not a household to mail: a block of flats typed without
# flat numbers, a care home or student hall, a PO box, a business, the store's own address given for
# walk-ins. Their customers get no household (docs/households.md, "The cap").
MAX_MEMBERS = 10
# Phone types a household's `landline` is drawn from (a `fixed_line_or_mobile` number only when two
# members share it: alone it may be a personal mobile).
LANDLINE_TYPES = ("fixed_line", "fixed_line_or_mobile")

HOUSEHOLD_COLUMNS = [
    "household_id", "address", "postcode", "city", "country", "members", "landline", "first_seen", "last_seen",
]
HISTORY_COLUMNS = ["old_id", "new_id", "reason", "changed_at"]
# How a customer got (or did not get) a household.
BASES = ("address", "phone", "over_cap", "no_address")


@dataclass(frozen=True)
class Households:
    """The result of one run: who lives where, the households, id changes, addresses over the cap."""

    customers: pd.DataFrame  # customer_id, household_id (null: none), basis (one of BASES)
    households: pd.DataFrame  # HOUSEHOLD_COLUMNS
    history: pd.DataFrame  # HISTORY_COLUMNS
    over_cap: pd.DataFrame  # address_key, customers: addresses with more customers than the cap


def new_household_id() -> str:
    """An opaque id: `H` and 16 hex characters of random bytes."""
    return "H" + os.urandom(8).hex()


# Normalised parts of an address, as SQL over columns street, postcode, city, country.
_STREET = f"nullif(trim({_street_expr()}), '')"
_POSTCODE = "nullif(upper(regexp_replace(CAST(postcode AS VARCHAR), '[^A-Za-z0-9]+', '', 'g')), '')"
_CITY = "nullif(trim(regexp_replace(lower(strip_accents(CAST(city AS VARCHAR))), '[^a-z0-9]+', ' ', 'g')), '')"
_COUNTRY = "coalesce(upper(trim(CAST(country AS VARCHAR))), '')"
_NORMALISED = f"{_STREET} AS s, {_POSTCODE} AS pc, {_CITY} AS ci, {_COUNTRY} AS co"
_KEY = "s || '|' || coalesce('pc:' || pc, 'city:' || ci) || '|' || co"


def _usable(t: str) -> str:
    """A street that names a dwelling: letters and a house number, and a postcode or a city to place it."""
    return (f"({t}.s IS NOT NULL AND regexp_matches({t}.s, '[a-z]') AND regexp_matches({t}.s, '[0-9]')"
            f" AND ({t}.pc IS NOT NULL OR {t}.ci IS NOT NULL))")


_GROUP = f"""
CREATE TEMP TABLE gnorm AS
SELECT customer_id, street, postcode, city, country, first_seen_at, last_seen_at, {_NORMALISED}
FROM golden_in WHERE customer_id IS NOT NULL;

CREATE TEMP TABLE rnorm AS
SELECT x.customer_id, r.record_id, street, postcode, city, country,
       coalesce(r.record_updated_at, r.record_created_at) AS ts, {_NORMALISED}
FROM recs_in AS r JOIN xref_in AS x USING (record_id)
WHERE r.street IS NOT NULL;

-- The surviving (current) address when its street is usable; else the street of the customer's most
-- recent record at that same place (the loyalty questionnaire asks only postcode and city). A record
-- at another postcode is an old address: a mover is not placed there.
CREATE TEMP TABLE addr0 AS
SELECT customer_id, street, postcode, city, country, s, pc, ci, co FROM gnorm AS g WHERE {_usable('g')}
UNION ALL
SELECT g.customer_id, r.street, coalesce(g.postcode, r.postcode), coalesce(g.city, r.city),
       coalesce(g.country, r.country), r.s, coalesce(g.pc, r.pc), coalesce(g.ci, r.ci),
       CASE WHEN g.co <> '' THEN g.co ELSE r.co END
FROM gnorm AS g JOIN rnorm AS r USING (customer_id)
WHERE NOT {_usable('g')} AND {_usable('r')}
  AND CASE WHEN g.pc IS NOT NULL THEN r.pc = g.pc ELSE r.ci = g.ci END
  AND (g.co = '' OR r.co = '' OR g.co = r.co)
QUALIFY row_number() OVER (PARTITION BY g.customer_id ORDER BY r.ts DESC NULLS LAST, r.record_id) = 1;

CREATE TEMP TABLE spellings AS
SELECT coalesce('pc:' || pc, 'city:' || ci) AS place, co, s, count(*) AS n,
       regexp_replace(s, '[^a-z]+', '', 'g') AS letters, regexp_replace(s, '[^0-9]+', ' ', 'g') AS numbers
FROM addr0 GROUP BY ALL;

-- A typo in the street (`geissler ring 2` / `gessler ring 2`): at one place and with the same house
-- numbers, a spelling within two edits of its letters of a more common one (tie: the smaller) is read
-- as that one. Cheap conditions first: DuckDB evaluates the expensive distance on few pairs.
CREATE TEMP TABLE respelt AS
SELECT a.place, a.co, a.s, first(b.s ORDER BY b.n DESC, b.s) AS canonical
FROM spellings AS a JOIN spellings AS b
  ON b.place = a.place AND b.co = a.co AND b.numbers = a.numbers AND b.s <> a.s
 AND (left(b.letters, 3) = left(a.letters, 3) OR right(b.letters, 3) = right(a.letters, 3))
WHERE (b.n > a.n OR (b.n = a.n AND b.s < a.s))
  AND length(a.letters) >= 6 AND abs(length(b.letters) - length(a.letters)) <= 2
  AND damerau_levenshtein(a.letters, b.letters) <= 2
GROUP BY ALL;

CREATE TEMP TABLE addr AS
SELECT a.* REPLACE (coalesce(r2.canonical, r1.canonical, a.s) AS s)
FROM addr0 AS a
LEFT JOIN respelt AS r1 ON r1.place = coalesce('pc:' || a.pc, 'city:' || a.ci) AND r1.co = a.co AND r1.s = a.s
LEFT JOIN respelt AS r2 ON r2.place = r1.place AND r2.co = r1.co AND r2.s = r1.canonical;

CREATE TEMP TABLE keyed AS SELECT *, {_KEY} AS key FROM addr;

-- An address without a postcode (or a country) is the one fuller address on the same street and place,
-- when there is exactly one.
CREATE TEMP TABLE fuller AS
SELECT a.customer_id, min(b.key) AS key
FROM keyed AS a JOIN keyed AS b
  ON b.s = a.s AND b.pc IS NOT NULL AND b.co <> ''
 AND (a.pc = b.pc OR (a.pc IS NULL AND a.ci = b.ci)) AND (a.co = b.co OR a.co = '')
WHERE a.pc IS NULL OR a.co = ''
GROUP BY a.customer_id HAVING count(DISTINCT b.key) = 1;

CREATE TEMP TABLE placed AS
SELECT k.customer_id, coalesce(f.key, k.key) AS key, k.street, k.postcode, k.city, k.country, k.pc, k.ci, k.co
FROM keyed AS k LEFT JOIN fuller AS f USING (customer_id);

CREATE TEMP TABLE sizes AS SELECT key, count(*) AS n FROM placed GROUP BY key;

CREATE TEMP TABLE phones AS
SELECT x.customer_id, r.phone_e164 AS phone, min(r.phone_type) AS phone_type
FROM recs_in AS r JOIN xref_in AS x USING (record_id)
WHERE coalesce(r.phone_valid, false) AND r.phone_e164 IS NOT NULL
GROUP BY ALL;

-- Where each number is at home: the addresses of the customers who gave it (a number given at two
-- addresses is ambiguous; one given by more customers than the cap is a switchboard, not a home).
CREATE TEMP TABLE phone_homes AS
SELECT ph.phone, count(DISTINCT ph.customer_id) AS holders, count(DISTINCT p.key) AS homes, min(p.key) AS home
FROM phones AS ph LEFT JOIN placed AS p USING (customer_id)
GROUP BY ph.phone;

-- A customer without a usable street joins the household its numbers point to, when they all point to
-- the same one, nothing it knows of its place contradicts it, and the household stays within the cap.
CREATE TEMP TABLE joined AS
WITH candidates AS (
    SELECT ph.customer_id, min(h.home) AS key
    FROM phones AS ph JOIN phone_homes AS h USING (phone)
    WHERE h.homes >= 1 AND ph.customer_id NOT IN (SELECT customer_id FROM placed)
    GROUP BY ph.customer_id
    HAVING count(DISTINCT h.home) = 1 AND bool_and(h.homes = 1 AND h.holders <= $max_members)
),
compatible AS (
    SELECT c.customer_id, c.key
    FROM candidates AS c JOIN sizes AS s USING (key) JOIN gnorm AS g USING (customer_id)
    WHERE s.n <= $max_members AND EXISTS (
        SELECT 1 FROM placed AS p
        WHERE p.key = c.key
          AND (g.pc IS NULL OR p.pc = g.pc)
          AND (g.pc IS NOT NULL OR g.ci IS NULL OR p.ci = g.ci)
          AND (g.co = '' OR p.co = '' OR p.co = g.co))
)
SELECT c.customer_id, c.key
FROM compatible AS c JOIN sizes AS s USING (key)
QUALIFY s.n + count(*) OVER (PARTITION BY c.key) <= $max_members;

CREATE TEMP TABLE members AS
SELECT g.customer_id,
       CASE WHEN p.customer_id IS NOT NULL THEN CASE WHEN s.n <= $max_members THEN p.key END ELSE j.key END AS key,
       CASE WHEN p.customer_id IS NOT NULL THEN CASE WHEN s.n <= $max_members THEN 'address' ELSE 'over_cap' END
            WHEN j.key IS NOT NULL THEN 'phone' ELSE 'no_address' END AS basis
FROM gnorm AS g
LEFT JOIN placed AS p USING (customer_id)
LEFT JOIN sizes AS s ON s.key = p.key
LEFT JOIN joined AS j USING (customer_id)
"""


def _mode(col: str) -> str:
    """The value most members give (tie: the most recently seen, then the smallest), per household."""
    return f"""{col}_mode AS (
    SELECT key, first({col} ORDER BY n DESC, ts DESC NULLS LAST, {col}) AS {col}
    FROM (SELECT key, {col}, count(*) AS n, max(last_seen_at) AS ts FROM mem WHERE {col} IS NOT NULL GROUP BY ALL)
    GROUP BY key)"""


_HOUSEHOLDS = f"""
WITH mem AS (
    SELECT n.key, n.customer_id, p.street, p.postcode, p.city, nullif(p.co, '') AS country,
           g.first_seen_at, g.last_seen_at
    FROM members AS n JOIN gnorm AS g USING (customer_id) LEFT JOIN placed AS p USING (customer_id)
    WHERE n.key IS NOT NULL
),
{_mode('street')}, {_mode('postcode')}, {_mode('city')}, {_mode('country')},
phone_of AS (
    SELECT mem.key, ph.phone, ph.phone_type, count(DISTINCT mem.customer_id) AS holders,
           bool_or(h.homes > 1) AS elsewhere_too
    FROM mem JOIN phones AS ph USING (customer_id) JOIN phone_homes AS h USING (phone)
    WHERE ph.phone_type IN {LANDLINE_TYPES}
    GROUP BY ALL
    HAVING ph.phone_type = 'fixed_line' OR count(DISTINCT mem.customer_id) >= 2
),
landline AS (
    SELECT key, first(phone ORDER BY elsewhere_too, holders DESC, phone_type <> 'fixed_line', phone) AS landline
    FROM phone_of GROUP BY key
),
base AS (
    SELECT key, count(*) AS members, min(first_seen_at) AS first_seen, max(last_seen_at) AS last_seen
    FROM mem GROUP BY key
)
SELECT b.key, st.street AS address, pc.postcode, ci.city, co.country, b.members, l.landline,
       b.first_seen, b.last_seen
FROM base AS b
LEFT JOIN street_mode AS st USING (key)
LEFT JOIN postcode_mode AS pc USING (key)
LEFT JOIN city_mode AS ci USING (key)
LEFT JOIN country_mode AS co USING (key)
LEFT JOIN landline AS l USING (key)
"""

# Ids follow the members, as customer ids follow the records (ids.py).
_PARTS = f"""
CREATE TEMP TABLE prev AS
SELECT customer_id, household_id AS old_id FROM prev_in
WHERE customer_id IS NOT NULL AND household_id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY household_id) = 1;

CREATE TEMP TABLE prev_hh AS
SELECT household_id, {_KEY} AS key, first_seen
FROM (SELECT household_id, first_seen, {_NORMALISED}
      FROM (SELECT household_id, address AS street, postcode, city, country, first_seen FROM prev_hh_in))
QUALIFY row_number() OVER (PARTITION BY household_id ORDER BY first_seen NULLS LAST) = 1;

CREATE TEMP TABLE m AS
SELECT n.customer_id, n.key, p.old_id
FROM members AS n LEFT JOIN prev AS p USING (customer_id)
WHERE n.key IS NOT NULL;

-- Each old id follows the largest part of its members (tie: the part still at its address, then the
-- part holding the smallest customer_id).
CREATE TEMP TABLE parts AS
SELECT m.old_id, m.key, count(*) AS n, coalesce(bool_or(h.key = m.key), false) AS stays,
       min(h.first_seen) AS old_first_seen,
       row_number() OVER (PARTITION BY m.old_id ORDER BY count(*) DESC, coalesce(bool_or(h.key = m.key), false) DESC,
                          min(m.customer_id)) = 1 AS is_heir
FROM m LEFT JOIN prev_hh AS h ON h.household_id = m.old_id
WHERE m.old_id IS NOT NULL
GROUP BY m.old_id, m.key;

-- A household inheriting several old ids keeps the one that brings most members (tie: the one that was
-- at this address, then the household seen first, then the smaller id).
CREATE TEMP TABLE kept AS
SELECT key, old_id AS household_id
FROM parts WHERE is_heir
QUALIFY row_number() OVER (PARTITION BY key ORDER BY n DESC, stays DESC, old_first_seen NULLS LAST, old_id) = 1
"""

_HISTORY = """
SELECT old_id::VARCHAR AS old_id, new_id::VARCHAR AS new_id, reason::VARCHAR AS reason, $now::TIMESTAMP AS changed_at
FROM (
    SELECT p.old_id, k.household_id AS new_id, CASE WHEN p.is_heir THEN 'merge' ELSE 'split' END AS reason
    FROM parts AS p JOIN keys AS k USING (key)
    WHERE p.old_id <> k.household_id
    UNION
    SELECT DISTINCT old_id, NULL, 'removed' FROM prev WHERE old_id NOT IN (SELECT old_id FROM parts)
)
ORDER BY reason, old_id, new_id
"""


def _run(con: duckdb.DuckDBPyConnection, script: str, params: dict) -> None:
    """Run the statements of a script one by one (DuckDB binds parameters per statement)."""
    for statement in filter(None, (part.strip() for part in script.split(";\n"))):
        con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})


# The columns of staging.person_records households read (a caller may pass only these).
RECORD_COLUMNS = ["record_id", "street", "postcode", "city", "country", "phone_e164", "phone_type", "phone_valid",
                  "record_created_at", "record_updated_at"]


def _records_frame(records: pd.DataFrame) -> pd.DataFrame:
    frame = typed_frame(records, ["record_id", "street", "postcode", "city", "country", "phone_e164", "phone_type"],
                        ["record_created_at", "record_updated_at"])
    valid = records["phone_valid"] if "phone_valid" in records.columns else pd.Series(None, index=records.index)
    frame["phone_valid"] = valid.reset_index(drop=True).astype("boolean")
    return frame


def build_households(
    golden: pd.DataFrame,
    records: pd.DataFrame,
    xref: pd.DataFrame,
    now: datetime,
    previous_customers: pd.DataFrame | None = None,
    previous_households: pd.DataFrame | None = None,
    max_members: int = MAX_MEMBERS,
    id_factory: Callable[[], str] | None = None,
) -> Households:
    """Group the golden customers into households and give each a stable id.

    `golden`: gold.golden_customers of this run (customer_id, street, postcode, city, country,
    first_seen_at, last_seen_at); `records` / `xref`: staging.person_records and gold.customer_xref
    (streets of older records at the same place, phone numbers); `previous_customers`: last run's
    (customer_id, household_id); `previous_households`: last run's gold.households (tie-breaks only).
    """
    con = duckdb.connect()
    try:
        con.register("golden_in", arrow_table(typed_frame(
            golden, ["customer_id", "street", "postcode", "city", "country"], ["first_seen_at", "last_seen_at"])))
        con.register("recs_in", arrow_table(_records_frame(records)))
        con.register("xref_in", arrow_table(typed_frame(xref, ["customer_id", "record_id"], [])))
        con.register("prev_in", arrow_table(typed_frame(previous_customers, ["customer_id", "household_id"], [])))
        con.register("prev_hh_in", arrow_table(typed_frame(
            previous_households, ["household_id", "address", "postcode", "city", "country"], ["first_seen"])))
        return _households(con, now, max_members, id_factory)
    finally:
        con.close()


# What the households SQL creates: dropped again when it ran in a connection that lives on.
_TEMP_TABLES = ("gnorm", "rnorm", "addr0", "spellings", "respelt", "addr", "keyed", "fuller", "placed", "sizes", "phones",
                "phone_homes", "joined", "members", "prev", "prev_hh", "m", "parts", "kept", "keys")
_INPUTS = ("golden_in", "recs_in", "xref_in", "prev_in", "prev_hh_in")


def _typed(relation: str, text: list[str], times: list[str], booleans: tuple[str, ...] = ()) -> str:
    """`typed_frame` in SQL: exactly these columns, text as VARCHAR, times as TIMESTAMP."""
    cols = ([f"CAST({c} AS VARCHAR) AS {c}" for c in text] + [f"CAST({c} AS TIMESTAMP) AS {c}" for c in times]
            + [f"CAST({c} AS BOOLEAN) AS {c}" for c in booleans])
    return f"SELECT {', '.join(cols)} FROM {relation}"


def build_households_in(con: duckdb.DuckDBPyConnection, golden: str, now: datetime, *,
                        records: str = "staging.person_records", xref: str = "gold.customer_xref",
                        previous_customers: str | None = None, previous_households: str | None = None,
                        max_members: int = MAX_MEMBERS, id_factory: Callable[[], str] | None = None) -> Households:
    """`build_households` over relations of `con` (the warehouse's tables; `golden` a table, view or query
    of this run's golden rows): the same SQL, run where the records are, nothing read out but the result."""
    none_c = "SELECT NULL::VARCHAR AS customer_id, NULL::VARCHAR AS household_id WHERE false"
    none_h = ("SELECT NULL::VARCHAR AS household_id, NULL::VARCHAR AS address, NULL::VARCHAR AS postcode, "
              "NULL::VARCHAR AS city, NULL::VARCHAR AS country, NULL::TIMESTAMP AS first_seen WHERE false")
    views = {
        "golden_in": _typed(f"({golden})", ["customer_id", "street", "postcode", "city", "country"],
                            ["first_seen_at", "last_seen_at"]),
        "recs_in": _typed(records, ["record_id", "street", "postcode", "city", "country", "phone_e164", "phone_type"],
                          ["record_created_at", "record_updated_at"], ("phone_valid",)),
        "xref_in": _typed(xref, ["customer_id", "record_id"], []),
        "prev_in": _typed(previous_customers, ["customer_id", "household_id"], []) if previous_customers else none_c,
        "prev_hh_in": (_typed(previous_households, ["household_id", "address", "postcode", "city", "country"],
                              ["first_seen"]) if previous_households else none_h),
    }
    try:
        for name, sql in views.items():
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
        return _households(con, now, max_members, id_factory)
    finally:
        for name in _TEMP_TABLES:
            con.execute(f"DROP TABLE IF EXISTS {name}")
        for name in _INPUTS:
            con.execute(f"DROP VIEW IF EXISTS {name}")
        try:
            con.unregister("minted_in")
        except Exception:  # noqa: BLE001 - not registered when the SQL failed before minting
            pass


def _households(con: duckdb.DuckDBPyConnection, now: datetime, max_members: int,
                id_factory: Callable[[], str] | None) -> Households:
    """The households SQL over golden_in, recs_in, xref_in, prev_in and prev_hh_in of `con`."""
    now_ts = pd.Timestamp(now)
    now_ts = now_ts.tz_convert("UTC").tz_localize(None) if now_ts.tzinfo else now_ts
    _run(con, _GROUP, {"max_members": int(max_members)})
    con.execute(f"CREATE OR REPLACE TEMP TABLE _hh_ties_new AS {_tokens_sql('gnorm', 'rnorm')}")
    _run(con, _PARTS, {})
    fresh = fetch_pandas(con, "SELECT DISTINCT key FROM m WHERE key NOT IN (SELECT key FROM kept) ORDER BY key")
    taken = {r[0] for r in con.execute(
        "SELECT old_id FROM prev UNION SELECT household_id FROM prev_hh WHERE household_id IS NOT NULL").fetchall()}
    fresh["household_id"] = pd.Series(mint_ids(len(fresh), taken, id_factory or new_household_id),
                                       dtype="string[pyarrow]")
    con.register("minted_in", arrow_table(fresh))
    con.execute("CREATE TEMP TABLE keys AS SELECT key, household_id FROM kept "
                "UNION ALL SELECT key, household_id FROM minted_in")
    customers = fetch_pandas(con, """
        SELECT n.customer_id, k.household_id, n.basis
        FROM members AS n LEFT JOIN keys AS k USING (key) ORDER BY n.customer_id""")
    households = fetch_pandas(con, f"""
        SELECT k.household_id, h.* EXCLUDE (key) FROM ({_HOUSEHOLDS}) AS h JOIN keys AS k USING (key)
        ORDER BY k.household_id""")
    history = fetch_pandas(con, _HISTORY, {"now": now_ts.to_pydatetime()})
    over_cap = fetch_pandas(con, """
        SELECT key AS address_key, n AS customers FROM sizes WHERE n > $max_members ORDER BY n DESC, key""",
                            {"max_members": int(max_members)})
    households["members"] = households["members"].astype("int64")
    return Households(customers, households[HOUSEHOLD_COLUMNS], history[HISTORY_COLUMNS], over_cap)


def with_household_ids(golden: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """The golden customers with `household_id` as their second column (null: no household)."""
    ids = customers.set_index("customer_id")["household_id"]
    out = golden.drop(columns=["household_id"], errors="ignore")
    out.insert(1, "household_id", out["customer_id"].map(ids).astype("string[pyarrow]"))
    return out


# --- incremental households (issue 13) ---------------------------------------------------------------------------
# A household is decided by the customers at its address (the same street spelt two ways at one place, an
# address without a postcode and the fuller one, the cap), the numbers its members give (a customer without a
# street joins the home its numbers point to) and its members' previous ids. So a run that changed some
# customers decides again only the customers tied to them through those, closed under the same ties: every
# customer sharing a place token (below) with one of them now or at the last run, holding a number one of them
# holds, or sharing a previous household with one of them. Everyone else keeps the household and id they have.

# When the customers to decide again are more than this share of all, everyone is decided again (cheaper).
INCREMENTAL_MAX_SHARE = 0.3

# A customer's place tokens: its household key is its street at its place (postcode, else city), and two
# spellings of a street are read as one only with the same house numbers at the same place; an address without
# a postcode is read as the fuller one on its street and city. So the customers whose keys can meet share a
# place (or a city) and house numbers: `pn:` place + numbers, `cn:` city + numbers. Computed over normalised
# rows (customer_id, s, pc, ci): the golden rows, and the records with a street at the customer's own place
# (`addr0`: a record elsewhere is an old address).
def _tokens_sql(golden: str, records: str) -> str:
    numbers = "nullif(trim(regexp_replace(s, '[^0-9]+', ' ', 'g')), '')"
    return f"""
SELECT DISTINCT customer_id, token FROM (
    SELECT customer_id, unnest(['pn:' || coalesce('pc:' || pc, 'city:' || ci) || '#' || {numbers},
                                'cn:' || ci || '#' || {numbers}]) AS token FROM {golden}
    UNION ALL
    SELECT r.customer_id, unnest(['pn:' || coalesce('pc:' || coalesce(g.pc, r.pc), 'city:' || coalesce(g.ci, r.ci))
                                  || '#' || {numbers.replace('(s,', '(r.s,')},
                                  'cn:' || r.ci || '#' || {numbers.replace('(s,', '(r.s,')}])
    FROM {records} AS r JOIN {golden} AS g USING (customer_id)
    WHERE CASE WHEN g.pc IS NOT NULL THEN r.pc = g.pc ELSE r.ci = g.ci END
) WHERE token IS NOT NULL"""


# Every customer's tokens as of the last run (a customer's tokens change only when it is rebuilt).
TIES_TABLE = "meta.household_ties"

_TIES = f"""
CREATE OR REPLACE TEMP TABLE _hh_gnorm AS
SELECT customer_id, {_STREET} AS s, {_POSTCODE} AS pc, {_CITY} AS ci FROM golden_in SEMI JOIN _hh_changed USING (customer_id);

CREATE OR REPLACE TEMP TABLE _hh_rnorm AS
SELECT x.customer_id, {_STREET} AS s, {_POSTCODE} AS pc, {_CITY} AS ci
FROM recs_in AS r JOIN xref_in AS x USING (record_id) SEMI JOIN _hh_changed USING (customer_id)
WHERE r.street IS NOT NULL;

CREATE OR REPLACE TEMP TABLE _hh_place AS
SELECT customer_id, token FROM {TIES_TABLE} ANTI JOIN _hh_changed USING (customer_id)
UNION ALL {_tokens_sql('_hh_gnorm', '_hh_rnorm')};

CREATE OR REPLACE TEMP TABLE _hh_phone AS
SELECT DISTINCT x.customer_id, r.phone_e164 AS phone
FROM recs_in AS r JOIN xref_in AS x USING (record_id)
WHERE coalesce(r.phone_valid, false) AND r.phone_e164 IS NOT NULL;

CREATE OR REPLACE TEMP TABLE _hh_prev AS SELECT customer_id, household_id FROM prev_in WHERE household_id IS NOT NULL;

-- the places the changed customers were at before this run
CREATE OR REPLACE TEMP TABLE _hh_old_place AS
SELECT DISTINCT token FROM {TIES_TABLE} SEMI JOIN _hh_changed USING (customer_id)
"""

_CLOSE = """
CREATE OR REPLACE TEMP TABLE _hh_next AS
WITH places AS (SELECT token FROM _hh_place SEMI JOIN _hh_affected USING (customer_id) UNION SELECT token FROM _hh_old_place),
     phones AS (SELECT DISTINCT phone FROM _hh_phone SEMI JOIN _hh_affected USING (customer_id)),
     ids AS (SELECT DISTINCT household_id FROM _hh_prev SEMI JOIN _hh_affected USING (customer_id))
SELECT customer_id FROM _hh_affected
UNION SELECT customer_id FROM _hh_place SEMI JOIN places USING (token)
UNION SELECT customer_id FROM _hh_phone SEMI JOIN phones USING (phone)
UNION SELECT customer_id FROM _hh_prev SEMI JOIN ids USING (household_id)
"""


def affected_customers(con: duckdb.DuckDBPyConnection, golden: str, changed: str, *,
                       records: str = "staging.person_records", xref: str = "gold.customer_xref",
                       previous_customers: str = "gold.golden_customers") -> int:
    """Fill the temp table `_hh_affected(customer_id)` with the customers whose household may differ from the
    last run because the customers in `changed` (a relation with `customer_id`: rebuilt and removed ones)
    changed, closed under the ties above, and `_hh_affected_places(token)` with their places; returns how many.
    `golden`: this run's golden rows (a query). Needs `TIES_TABLE` (the places everyone was at last run)."""
    views = {
        "golden_in": _typed(f"({golden})", ["customer_id", "street", "postcode", "city", "country"], []),
        "recs_in": _typed(records, ["record_id", "street", "postcode", "city", "phone_e164"], [], ("phone_valid",)),
        "xref_in": _typed(xref, ["customer_id", "record_id"], []),
        "prev_in": _typed(previous_customers, ["customer_id", "household_id"], []),
        "_hh_changed": _typed(f"({changed})", ["customer_id"], []),
    }
    try:
        for name, sql in views.items():
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
        _run(con, _TIES, {})
        con.execute("CREATE OR REPLACE TEMP TABLE _hh_affected AS SELECT DISTINCT customer_id FROM _hh_changed")
        size = con.execute("SELECT count(*) FROM _hh_affected").fetchall()[0][0]
        while True:
            con.execute(_CLOSE)
            grown = con.execute("SELECT count(*) FROM _hh_next").fetchall()[0][0]
            con.execute("CREATE OR REPLACE TEMP TABLE _hh_affected AS SELECT * FROM _hh_next")
            if grown == size:
                con.execute("""CREATE OR REPLACE TEMP TABLE _hh_affected_places AS SELECT token FROM _hh_place
                    SEMI JOIN _hh_affected USING (customer_id) UNION SELECT token FROM _hh_old_place""")
                return size
            size = grown
    finally:
        for name in ("_hh_place", "_hh_phone", "_hh_prev", "_hh_old_place", "_hh_next", "_hh_gnorm", "_hh_rnorm"):
            con.execute(f"DROP TABLE IF EXISTS {name}")
        for name in views:
            con.execute(f"DROP VIEW IF EXISTS {name}")


# Every customer's basis (BASES) and the addresses over the cap (their place and customers; no street), as last
# decided: an incremental run decides some customers only, and the figures in the UI are over everyone.
BASIS_TABLE = "meta.household_basis"
OVER_CAP_TABLE = "meta.households_over_cap"
# the place token (`affected_customers`) of an address key `street|pc:X|country` or `street|city:Y|country`
_KEY_PLACE = ("'pn:' || split_part(address_key, '|', 2) || '#' || "
              "nullif(trim(regexp_replace(split_part(address_key, '|', 1), '[^0-9]+', ' ', 'g')), '')")


def state_exists(con: duckdb.DuckDBPyConnection) -> bool:
    return all(table_exists(con, t) for t in (BASIS_TABLE, OVER_CAP_TABLE, TIES_TABLE))


def save(con: duckdb.DuckDBPyConnection, result: Households, partial: bool) -> None:
    """Write gold.households and the state above (inside the caller's transaction). `partial`: `result` covers
    the customers of `_hh_affected` (ids they held in `_hh_old_ids`, places in `_hh_affected_places`) only."""
    con.register("_hh_frame", result.households)
    con.register("_hh_basis", result.customers[["customer_id", "basis"]])
    con.register("_hh_cap", result.over_cap)
    try:
        if partial:
            con.execute("""CREATE OR REPLACE TABLE gold.households AS
                SELECT * FROM gold.households WHERE household_id NOT IN (SELECT household_id FROM _hh_old_ids)
                UNION ALL SELECT * FROM _hh_frame ORDER BY household_id""")
            con.execute(f"DELETE FROM {BASIS_TABLE} WHERE customer_id IN (SELECT customer_id FROM _hh_affected)")
            con.execute(f"INSERT INTO {BASIS_TABLE} SELECT customer_id, basis FROM _hh_basis")
            con.execute(f"DELETE FROM {OVER_CAP_TABLE} WHERE place IN (SELECT token FROM _hh_affected_places)")
            con.execute(f"INSERT INTO {OVER_CAP_TABLE} SELECT {_KEY_PLACE}, customers FROM _hh_cap")
            con.execute(f"DELETE FROM {TIES_TABLE} WHERE customer_id IN (SELECT customer_id FROM _hh_affected)")
            con.execute(f"INSERT INTO {TIES_TABLE} SELECT * FROM _hh_ties_new")
        else:
            con.execute("CREATE OR REPLACE TABLE gold.households AS SELECT * FROM _hh_frame")
            con.execute(f"CREATE OR REPLACE TABLE {BASIS_TABLE} AS SELECT customer_id, basis FROM _hh_basis")
            con.execute(f"CREATE OR REPLACE TABLE {OVER_CAP_TABLE} AS SELECT {_KEY_PLACE} AS place, customers FROM _hh_cap")
            con.execute(f"CREATE OR REPLACE TABLE {TIES_TABLE} AS SELECT * FROM _hh_ties_new")
    finally:
        for name in ("_hh_frame", "_hh_basis", "_hh_cap"):
            con.unregister(name)
