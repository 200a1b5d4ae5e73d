"""The Splink model internals: matching columns, comparisons, blocking rules and the DuckDB session."""

import contextlib
import functools
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import splink.comparison_level_library as cll
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.blocking_rule_library import CustomRule
from splink.internals.splink_dataframe import SplinkDataFrame
from splink.comparison_library import CustomComparison

logger = logging.getLogger(__name__)

UNIQUE_ID = "record_id"

# Above this many records the Splink session works in a temporary DuckDB file
# instead of memory, so blocking and scoring can spill to disk.
ON_DISK_ABOVE_ROWS = 250_000

# First names that people use for one another (formal name and short forms). Names that share
# a form end up in one group (chris: christopher, christian, christophe), which is what a
# comparison level wants: "these two could be the same given name".
_NICKNAME_GROUPS = """
robert bob rob bobby robbie | william bill will billy willy liam | katherine catherine kate katie kathy cathy kat
elizabeth elisabeth liz beth lizzie betty eliza lisa elli lies bep babette lisette | margaret margarete maggie peggy meg grete
james jim jimmy jamie | richard rick dick rich ricky | thomas tom tommy | michael mike mick micky michi
christopher christian christophe chris | jennifer jen jenny | alexander alexandre alexandra alex sasha
daniel dan danny | joseph joe joey | jonathan jon | samantha samuel sam | rebecca becky | edward ed ted eddie
anthony tony | matthew matt | matthias matze | nicholas nicolas nick nico | patricia pat tricia trish
susan susanne sue susie susi | victoria vicky vic | charles charlie chuck | benjamin ben | andrew andy
andreas andi | johannes johann johanna hans jo jan anneke | friedrich fritz | wolfgang wolf
katharina catharina kathi katja tineke toos | stefanie stephanie steffi steph | franziska franzi
maximilian maximilien max | magdalena lena | gabriele gabi | barbara babsi | frederic fred | isabelle isa
dominique dom | emmanuel manu | veronique vero | sebastien seb | philippe philip phil | cornelis kees
wilhelmus wim | hendrik henk | jacobus koos jaap | adrianus arie | petrus piet | theodorus theo
maria marieke mies
"""


@functools.cache
def _nicknamer():
    from nicknames import NickNamer

    return NickNamer()


def nickname_keys(name: str) -> list[str]:
    """Names this first name may stand for: itself, the formal names it is a nickname of (the
    `nicknames` package: English given names) and its group in the hand list above (the other
    languages). Two first names are nicknames of each other when their keys share one
    (bill / william, kate / katherine, hans / johannes), without chaining (alan / albert share none)."""
    keys = {name, *_nicknamer().canonicals_of(name)}
    group = nickname_groups().get(name)
    if group:
        keys.add("group:" + group)
    return sorted(keys)


@functools.cache
def nickname_groups() -> dict[str, str]:
    """Normalised first name -> group key (the group's first name), merging groups that share a name."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for group in _NICKNAME_GROUPS.replace("\n", " | ").split("|"):
        names = group.split()
        for name in names[1:]:
            a, b = find(names[0]), find(name)
            if a != b:
                parent[b] = a
    return {name: find(name) for name in parent}


# Columns of the matching frame; comparison_detail keys are the comparison names.
MATCH_COLUMNS = [
    UNIQUE_ID,
    "first_name_norm",
    "last_name_norm",
    "first_initial",
    "last_initial",
    "first_name_group",
    "first_name_nicks",
    "first_name_ph",
    "last_name_ph",
    "birth_date",
    "birth_year",
    "birth_md",
    "birth_date_dm",
    "email_norm",
    "email_user",
    "email_domain",
    "email_user_head",
    "email_user_tail",
    "phone_e164",
    "phone_mobile",
    "phone_home",
    "phone_tail",
    "street_norm",
    "postcode",
    "postcode_head",
    "postcode_sorted",
    "initials",
    "city_norm",
    "city_ph",
]

# Turns `staging.person_records` into the matching frame. Blank means unknown.
# - A date is also kept with day and month swapped (when the day is <= 12) so a
#   DD/MM vs MM/DD mix-up still counts as agreement.
# - The email drops a "+tag" (anna+shop@x.com is anna@x.com).
# - A mobile number belongs to one person, a landline to a household: mobiles
#   are compared as phones, other numbers as part of the home (with the address),
#   so a family sharing an address and a landline is not counted twice.
_PREPARE_SQL = f"""
WITH base AS (
    SELECT
        {{record_id_expr}} AS {UNIQUE_ID},
        nullif(trim(CAST(first_name_norm AS VARCHAR)), '') AS first_name_norm,
        nullif(trim(CAST(last_name_norm AS VARCHAR)), '') AS last_name_norm,
        TRY_CAST(birth_date AS DATE) AS bd,
        nullif(regexp_replace(lower(trim(CAST(email_corrected AS VARCHAR))), '\\+[^@]*@', '@'), '') AS email_norm,
        nullif(trim(CAST(phone_e164 AS VARCHAR)), '') AS phone_e164,
        lower(CAST(phone_type AS VARCHAR)) AS phone_type,
        nullif(trim({{street_expr}}), '') AS street_norm,
        nullif(upper(regexp_replace(CAST(postcode AS VARCHAR), '\\s+', '', 'g')), '') AS postcode,
        nullif(trim(regexp_replace(lower(strip_accents(CAST(city AS VARCHAR))), '[^a-z0-9]+', ' ', 'g')), '') AS city_norm
    FROM person_records
)
SELECT
    {UNIQUE_ID},
    first_name_norm,
    last_name_norm,
    substr(first_name_norm, 1, 1) AS first_initial,
    substr(last_name_norm, 1, 1) AS last_initial,
    strftime(bd, '%Y-%m-%d') AS birth_date,
    CAST(year(bd) AS VARCHAR) AS birth_year,
    strftime(bd, '%m-%d') AS birth_md,
    CASE WHEN day(bd) <= 12 AND day(bd) <> month(bd)
         THEN strftime(make_date(year(bd), day(bd), month(bd)), '%Y-%m-%d') END AS birth_date_dm,
    email_norm,
    nullif(regexp_extract(email_norm, '^[^@]+'), '') AS email_user,
    nullif(regexp_extract(email_norm, '@(.*)$', 1), '') AS email_domain,
    nullif(left(regexp_extract(email_norm, '^[^@]+'), 5), '') AS email_user_head,
    nullif(right(regexp_extract(email_norm, '^[^@]+'), 4), '') AS email_user_tail,
    phone_e164,
    CASE WHEN phone_type = 'mobile' THEN phone_e164 END AS phone_mobile,
    CASE WHEN phone_type IS DISTINCT FROM 'mobile' THEN phone_e164 END AS phone_home,
    CASE WHEN length(phone_e164) >= 8 THEN right(phone_e164, 7) END AS phone_tail,
    street_norm,
    postcode,
    CASE WHEN length(postcode) >= 4 THEN left(postcode, length(postcode) - 1) END AS postcode_head,
    -- the same characters in any order: two digits transposed (2305 / 2350) keep the key
    array_to_string(list_sort(string_split(postcode, '')), '') AS postcode_sorted,
    -- both initials, in order: first and last name swapped keep the key
    CASE WHEN first_name_norm IS NOT NULL AND last_name_norm IS NOT NULL
         THEN least(substr(first_name_norm, 1, 1), substr(last_name_norm, 1, 1))
              || greatest(substr(first_name_norm, 1, 1), substr(last_name_norm, 1, 1)) END AS initials,
    city_norm
FROM base
"""


def _street_expr() -> str:
    """Street in one spelling: lower case, no accents or punctuation, common abbreviations unified."""
    expr = "replace(lower(strip_accents(CAST(street AS VARCHAR))), 'ß', 'ss')"
    expr = f"regexp_replace({expr}, '[^a-z0-9]+', ' ', 'g')"
    for pattern, short in ((r"(strasse|str)\b", "str"), (r"\b(street|st)\b", "st"), (r"\b(road|rd)\b", "rd"),
                           (r"\b(avenue|ave|av)\b", "ave"), (r"\b(straat|str)\b", "str"), (r"\b(laan|ln|lane)\b", "ln")):
        expr = f"regexp_replace({expr}, '{pattern}', '{short}', 'g')"
    return expr


# Columns of `staging.person_records` that tell people apart besides the name: ways to reach
# the person, and where they live or when they were born.
CONTACT_COLUMNS = ("email_corrected", "phone_e164")
PLACE_AND_BIRTH_COLUMNS = ("birth_date", "street", "postcode", "city")


def _present(records: pd.DataFrame, columns) -> pd.Series:
    present = pd.Series(False, index=records.index)
    for col in columns:
        if col in records.columns:
            values = records[col]
            text = values.astype("string").str.strip()
            present |= (values.notna() & text.notna() & (text != "")).astype(bool)
    return present


def record_evidence(records: pd.DataFrame) -> pd.DataFrame:
    """What each record holds besides a name: `name` (nothing), `contact` (an email or a phone,
    but no birth date nor address: what a call-center agent or an app sign-in gets) or `more`.

    Columns `record_id, evidence`; the clustering lets `name` and `contact` records join a
    customer on the name alone only where that customer is the one person they can be
    (clustering.cluster).
    """
    contact = _present(records, CONTACT_COLUMNS)
    more = _present(records, PLACE_AND_BIRTH_COLUMNS)
    evidence = pd.Series("name", index=records.index, dtype=object)
    evidence[contact] = "contact"
    evidence[more] = "more"
    return pd.DataFrame({"record_id": records["record_id"].to_numpy(), "evidence": evidence.to_numpy()})


def people_for_clustering(records: pd.DataFrame) -> pd.DataFrame:
    """`record_id, first_name_norm, first_name_group, last_name_norm, birth_date` (text): what the
    clustering needs to tell two people apart (clustering.split_conflicts); `first_name_group` holds
    the nickname keys, "|"-joined."""
    first = records["first_name_norm"].astype("string").str.strip().replace("", pd.NA)
    birth = pd.to_datetime(records["birth_date"], errors="coerce").dt.strftime("%Y-%m-%d")
    return pd.DataFrame({
        "record_id": records["record_id"].astype("string"),
        "first_name_norm": first,
        "first_name_group": first.map({n: "|".join(nickname_keys(n)) for n in pd.unique(first.dropna())}),
        "last_name_norm": records["last_name_norm"].astype("string").str.strip().replace("", pd.NA),
        "birth_date": birth,
    })


def phonetic(names: pd.Series) -> pd.Series:
    """Metaphone code of each name (jellyfish), so a typo that keeps the sound keeps the blocking key
    (katherine / catherine, sondergeld / sondergelt); computed once per distinct name."""
    import jellyfish

    names = names.astype("object")
    distinct = pd.unique(names.dropna())
    codes = {n: (jellyfish.metaphone(n.replace(" ", "")) or None) for n in distinct if isinstance(n, str)}
    return names.map(codes).astype("object").where(names.notna(), None)


def prepare(records: pd.DataFrame) -> pd.DataFrame:
    """Build the matching frame (one row per record, blanks as null) from `staging.person_records` rows."""
    cols = set(records.columns)
    needed = {
        "first_name_norm", "last_name_norm", "birth_date", "email_corrected",
        "phone_e164", "phone_type", "street", "postcode", "city",
    }
    frame = records.copy()
    for missing in needed - cols:
        frame[missing] = None
    if UNIQUE_ID in cols:
        record_id_expr = f"CAST({UNIQUE_ID} AS VARCHAR)"
    else:
        record_id_expr = "CAST(source AS VARCHAR) || '|' || CAST(source_key AS VARCHAR)"
    con = duckdb.connect()
    try:
        con.register("person_records", frame)
        # `.df()`, not warehouse.read_df: 2.7 s faster at 1M records, but the Arrow-backed text it gives took
        # the peak of the full 1M run from 3.96 to 4.35-4.40 GB (Splink's DuckDB reading the frame)
        out = con.execute(_PREPARE_SQL.format(record_id_expr=record_id_expr, street_expr=_street_expr())).df()
    finally:
        con.close()
    groups = nickname_groups()
    out["first_name_group"] = out["first_name_norm"].map(lambda n: groups.get(n, n) if isinstance(n, str) else None)
    distinct = {n: nickname_keys(n) for n in pd.unique(out["first_name_norm"].dropna())}
    out["first_name_nicks"] = out["first_name_norm"].map(lambda n: distinct.get(n) if isinstance(n, str) else None)
    out["first_name_ph"] = phonetic(out["first_name_norm"])
    out["last_name_ph"] = phonetic(out["last_name_norm"])
    # The city as it sounds, spaces ignored: "salisburyh eights", "salisbury heights" and "salisbry
    # heights" keep one key where the city itself (or the postcode) carries the typo.
    out["city_ph"] = phonetic(out["city_norm"].str.replace(" ", "", regex=False))
    if out[UNIQUE_ID].duplicated().any():
        dupes = out.loc[out[UNIQUE_ID].duplicated(), UNIQUE_ID].head(5).tolist()
        raise ValueError(f"record_id must be unique; duplicated: {dupes}")
    return out[MATCH_COLUMNS]


# The SQL of the custom levels is written once, with the few functions DuckDB and Spark SQL name or
# call differently filled in per dialect (`create_settings_dict("duckdb")` / `("spark")`). On Spark,
# Jaro-Winkler is `cp_jaro_winkler` (jellyfish, registered by identity/spark_engine.py): it gives
# DuckDB's values exactly, where the jar shipped with Splink (`jaro_winkler`, commons-text) differs
# on about 4% of 40,000 generated string pairs and moves ~0.2% across a threshold. The jar's
# `damerau_levenshtein` is used as is (only "<= 1" is asked, where all variants agree; the email null
# level keeps nulls away from it: the jar returns 100 for a null).
SPARK_JARO_WINKLER = "cp_jaro_winkler"
_DIALECT_SQL = {
    "duckdb": {"jw": "jaro_winkler_similarity({}, {})", "overlap": "list_has_any({}, {})",
               "digits": "regexp_replace({}, '[^0-9]', '', 'g')", "has_digit": "regexp_matches({}, '[0-9]')",
               "half": "{} // 2"},
    "spark": {"jw": SPARK_JARO_WINKLER + "({}, {})", "overlap": "arrays_overlap({}, {})",
              "digits": "regexp_replace({}, '[^0-9]', '')", "has_digit": "regexp_like({}, '[0-9]')",
              "half": "{} div 2"},
}


def _sql(dialect: str, function: str, *args: str) -> str:
    if dialect not in _DIALECT_SQL:
        raise ValueError(f"SQL dialect {dialect!r}: the comparisons are written for {sorted(_DIALECT_SQL)}")
    return _DIALECT_SQL[dialect][function].format(*args)


# Swapped fields, one of them possibly with a typo (a misspelt first name is what makes a
# standardiser or a clerk take it for the surname).
def swapped_names_sql(dialect: str = "duckdb") -> str:
    jw = functools.partial(_sql, dialect, "jw")
    return (
        f"((first_name_norm_l = last_name_norm_r AND {jw('last_name_norm_l', 'first_name_norm_r')} >= 0.9) "
        f"OR (last_name_norm_l = first_name_norm_r AND {jw('first_name_norm_l', 'last_name_norm_r')} >= 0.9))"
    )


SWAPPED_NAMES_SQL = swapped_names_sql("duckdb")


# One typo in the email, not in the first letter nor in the digits. damerau_levenshtein and
# regexp_replace cost ~10 us a pair in DuckDB (the email level was ~60% of predict time), so cheap
# tests that every pair within one edit passes go first (DuckDB evaluates the AND in order on the
# rows still true): same first letter, lengths within one, and the first or the last h characters
# equal, h = shorter length // 2 - 1 (one edit, a transposition included, touches at most two
# adjacent positions, so it spares one of the two). Same pairs as _EMAIL_TYPO_SQL_V1, ~7x faster.
_EMAIL_TYPO_SQL_V1 = (
    "damerau_levenshtein(email_norm_l, email_norm_r) <= 1 AND left(email_norm_l, 1) = left(email_norm_r, 1) "
    "AND regexp_replace(email_norm_l, '[^0-9]', '', 'g') = regexp_replace(email_norm_r, '[^0-9]', '', 'g')"
)
def email_typo_sql(dialect: str = "duckdb") -> str:
    half = "greatest(" + _sql(dialect, "half", "least(length(email_norm_l), length(email_norm_r))") + " - 1, 0)"
    return (
        "left(email_norm_l, 1) = left(email_norm_r, 1) AND abs(length(email_norm_l) - length(email_norm_r)) <= 1 "
        f"AND (left(email_norm_l, {half}) = left(email_norm_r, {half}) "
        f"OR right(email_norm_l, {half}) = right(email_norm_r, {half})) "
        "AND damerau_levenshtein(email_norm_l, email_norm_r) <= 1 "
        f"AND {_sql(dialect, 'digits', 'email_norm_l')} = {_sql(dialect, 'digits', 'email_norm_r')}"
    )


EMAIL_TYPO_SQL = email_typo_sql("duckdb")
# Level conditions of saved models replaced, on load, by an equivalent (same pairs) faster form.
EQUIVALENT_SQL = {_EMAIL_TYPO_SQL_V1: EMAIL_TYPO_SQL}


# Two first names that one person could have written: unknown on a side, one nickname group, a
# typo, an initial, or first and last name swapped.
def first_names_compatible_sql(dialect: str = "duckdb") -> str:
    return (
        "(first_name_norm_l IS NULL OR first_name_norm_r IS NULL OR "
        f"{_sql(dialect, 'overlap', 'first_name_nicks_l', 'first_name_nicks_r')} "
        f"OR {_sql(dialect, 'jw', 'first_name_norm_l', 'first_name_norm_r')} >= 0.8 "
        "OR ((length(first_name_norm_l) = 1 OR length(first_name_norm_r) = 1) AND first_initial_l = first_initial_r) "
        "OR first_name_norm_l = last_name_norm_r OR last_name_norm_l = first_name_norm_r)"
    )


FIRST_NAMES_COMPATIBLE_SQL = first_names_compatible_sql("duckdb")


class DialectLevel(cll.CustomLevel):
    """A custom level whose SQL is built for the dialect asked for (`sql(dialect) -> condition`)."""

    def __init__(self, sql, label_for_charts: str | None = None):
        super().__init__(sql("duckdb"), label_for_charts)
        self._sql_for = sql

    def create_sql(self, sql_dialect) -> str:
        return self._sql_for(sql_dialect.sql_dialect_str)


class _JaroWinklerLevel(cll.JaroWinklerLevel):
    """Splink's Jaro-Winkler level; on Spark with the DuckDB-exact function (see SPARK_JARO_WINKLER)."""

    def create_sql(self, sql_dialect) -> str:
        if sql_dialect.sql_dialect_str != "spark":
            return super().create_sql(sql_dialect)
        self.col_expression.sql_dialect = sql_dialect
        col = self.col_expression
        return f"{SPARK_JARO_WINKLER}({col.name_l}, {col.name_r}) >= {self.distance_threshold}"


def _jw(col: str, threshold: float) -> cll.JaroWinklerLevel:
    return _JaroWinklerLevel(col, threshold)


def comparisons() -> list[CustomComparison]:
    """The comparisons, one per attribute; output names are the keys of `comparison_detail`."""
    first_name = CustomComparison(
        output_column_name="first_name",
        comparison_description="first name (normalised), tolerant of swaps, typos and initials",
        comparison_levels=[
            cll.NullLevel("first_name_norm"),
            cll.ExactMatchLevel("first_name_norm").configure(tf_adjustment_column="first_name_norm"),
            DialectLevel(swapped_names_sql, label_for_charts="First and last name swapped"),
            DialectLevel(lambda d: _sql(d, "overlap", "first_name_nicks_l", "first_name_nicks_r"),
                         label_for_charts="Nickname of each other"),
            _jw("first_name_norm", 0.92),
            # Similar first names at one street address are usually two members of a household
            # (luzia / luciano, mark / maria): only away from a shared street do they count as a typo.
            DialectLevel(
                lambda d: f"{_sql(d, 'jw', 'first_name_norm_l', 'first_name_norm_r')} >= 0.8 "
                "AND (street_norm_l IS NULL OR street_norm_r IS NULL OR street_norm_l <> street_norm_r)",
                label_for_charts="Jaro-Winkler >= 0.8, not at one street address",
            ),
            cll.CustomLevel(
                "(length(first_name_norm_l) = 1 OR length(first_name_norm_r) = 1) "
                "AND first_initial_l = first_initial_r",
                label_for_charts="Initial only, initials agree",
            ),
            cll.ElseLevel(),
        ],
    )
    last_name = CustomComparison(
        output_column_name="last_name",
        comparison_description="last name (normalised), tolerant of swaps and typos",
        comparison_levels=[
            cll.NullLevel("last_name_norm"),
            cll.ExactMatchLevel("last_name_norm").configure(tf_adjustment_column="last_name_norm"),
            DialectLevel(swapped_names_sql, label_for_charts="First and last name swapped"),
            _jw("last_name_norm", 0.92),
            _jw("last_name_norm", 0.80),
            cll.ElseLevel(),
        ],
    )
    birth_date = CustomComparison(
        output_column_name="birth_date",
        comparison_description="birth date",
        comparison_levels=[
            cll.NullLevel("birth_date"),
            # Term frequency: a date shared by many records (a default, a clipped age) says little.
            cll.ExactMatchLevel("birth_date").configure(tf_adjustment_column="birth_date"),
            cll.CustomLevel("birth_date_dm_l = birth_date_r", label_for_charts="Day and month swapped"),
            cll.LevenshteinLevel("birth_date", 1).configure(label_for_charts="One digit differs"),
            cll.ElseLevel(),
        ],
    )
    email = CustomComparison(
        output_column_name="email",
        comparison_description="email (domain typos corrected, +tag dropped)",
        comparison_levels=[
            cll.NullLevel("email_norm"),
            # No term frequency: an address belongs to one person, so how often it occurs counts
            # that person's records, not chance agreement.
            cll.ExactMatchLevel("email_norm"),
            # A typo keeps the first letter and the digits: j.smith@ and a.smith@ (a household with
            # initial-and-surname addresses) differ in the first letter, john.smith12@ and
            # john.smith13@ (namesakes) in the number that tells them apart.
            DialectLevel(email_typo_sql, label_for_charts="One typo in email (not in the first letter or the digits)"),
            # A username made of the name alone (anna.smith@) is shared by namesakes and
            # says nothing the name comparisons did not; one with digits is personal.
            DialectLevel(
                lambda d: f"email_user_l = email_user_r AND {_sql(d, 'has_digit', 'email_user_l')} AND length(email_user_l) >= 6",
                label_for_charts="Same username with digits, other domain",
            ),
            cll.ElseLevel(),
        ],
    )
    phone = CustomComparison(
        output_column_name="phone",
        comparison_description="mobile phone (E.164); landlines are compared with the address",
        comparison_levels=[
            cll.NullLevel("phone_mobile"),
            # A family often gives one number, mobile-looking, for all its members: a shared number
            # with first names that cannot be one person's is its own (weaker) level, learnt by EM.
            DialectLevel(lambda d: f"phone_mobile_l = phone_mobile_r AND {first_names_compatible_sql(d)}",
                            label_for_charts="Same mobile, first names compatible"),
            cll.ExactMatchLevel("phone_mobile").configure(label_for_charts="Same mobile, first names differ"),
            cll.CustomLevel("right(phone_mobile_l, 7) = right(phone_mobile_r, 7)", label_for_charts="Last 7 digits agree"),
            cll.LevenshteinLevel("phone_mobile", 1).configure(label_for_charts="One digit differs"),
            cll.ElseLevel(),
        ],
    )
    address = CustomComparison(
        output_column_name="address",
        comparison_description="the home: street, postcode, city and landline as one comparison (they are not independent)",
        comparison_levels=[
            cll.CustomLevel(
                "(postcode_l IS NULL OR postcode_r IS NULL) AND (city_norm_l IS NULL OR city_norm_r IS NULL) "
                "AND (phone_home_l IS NULL OR phone_home_r IS NULL)",
            ).configure(is_null_level=True),
            # One home is what a household shares: with first names that cannot be one person's it
            # is its own, weaker level (learnt by EM), as for a shared mobile.
            DialectLevel(
                lambda d: "street_norm_l = street_norm_r AND (postcode_l = postcode_r OR city_norm_l = city_norm_r) "
                f"AND {first_names_compatible_sql(d)}",
                label_for_charts="Same street and postcode or city",
            ),
            DialectLevel(lambda d: f"phone_home_l = phone_home_r AND {first_names_compatible_sql(d)}",
                            label_for_charts="Same landline"),
            cll.CustomLevel(
                "(street_norm_l = street_norm_r AND (postcode_l = postcode_r OR city_norm_l = city_norm_r)) "
                "OR phone_home_l = phone_home_r",
                label_for_charts="Same home, first names differ (a household)",
            ),
            DialectLevel(
                lambda d: f"{_sql(d, 'jw', 'street_norm_l', 'street_norm_r')} >= 0.88 "
                "AND (postcode_l = postcode_r OR city_norm_l = city_norm_r)",
                label_for_charts="Similar street, same postcode or city",
            ),
            cll.ExactMatchLevel("postcode").configure(
                label_for_charts="Same postcode", tf_adjustment_column="postcode"
            ),
            cll.ExactMatchLevel("city_norm").configure(label_for_charts="Same city", tf_adjustment_column="city_norm"),
            cll.ElseLevel(),
        ],
    )
    return [first_name, last_name, birth_date, email, phone, address]


SWAPPED_NAMES_RULE = CustomRule(
    "l.first_name_norm = r.last_name_norm AND l.last_name_norm = r.first_name_norm"
)
# First and last name swapped, and one of them misspelt as well: one name equals the other record's
# other name (or sounds like it), in one place. Each orientation is its own rule (an equi-join each;
# Splink orders the pair, so together they see both).
SWAPPED_TYPO_RULES = [
    CustomRule("l.first_name_norm = r.last_name_norm AND l.postcode = r.postcode"),
    CustomRule("l.last_name_norm = r.first_name_norm AND l.postcode = r.postcode"),
    CustomRule("l.first_name_ph = r.last_name_ph AND l.postcode_head = r.postcode_head"),
    CustomRule("l.last_name_ph = r.first_name_ph AND l.postcode_head = r.postcode_head"),
]


# Candidate blocking keys, strongest first. Two records of one person that agree, up to a typo each,
# on two of {name, birth date, postcode/city, email, phone} meet in at least one: every field has keys
# that a single typo leaves intact (a name's metaphone code or its initial with the other name exact;
# a birth date's year or its month and day; a postcode without its last character, or the city; the
# head or the tail of an email username; the last 7 digits of a phone), and each pair of fields is
# joined by one of those combinations. Which of them a deployment uses is decided on its own records
# by counting the pairs each would add (`select_blocking_rules`).
BLOCKING_KEYS: list[tuple[str, ...]] = [
    ("phone_e164",),
    ("email_norm",),
    ("first_name_norm", "last_name_norm"),
    ("first_name_ph", "last_name_ph"),
    ("last_name_norm", "birth_date"),
    ("first_name_norm", "birth_date"),
    ("last_name_ph", "first_initial", "birth_year"),
    ("last_name_ph", "first_initial", "birth_md"),
    ("first_name_ph", "last_initial", "birth_year"),
    ("first_name_ph", "last_initial", "birth_md"),
    ("last_name_norm", "postcode"),
    ("first_name_norm", "postcode"),
    ("last_name_ph", "first_initial", "postcode_head"),
    ("last_name_ph", "first_initial", "city_norm"),
    ("first_name_ph", "last_initial", "postcode_head"),
    ("first_name_ph", "last_initial", "city_norm"),
    ("postcode", "first_initial", "birth_year"),
    ("birth_date", "postcode_head"),
    ("birth_date", "city_norm"),
    ("birth_md", "postcode"),
    ("birth_date", "first_initial"),
    ("birth_date", "last_initial"),
    ("birth_date", "initials"),
    ("postcode_sorted", "last_name_norm"),
    ("postcode_sorted", "first_name_norm"),
    ("city_norm", "last_name_norm"),
    ("city_norm", "first_name_norm"),
    ("email_user", "first_initial"),
    ("phone_tail", "first_initial"),
    ("phone_tail", "last_initial"),
    ("phone_tail", "birth_year"),
    ("email_user_head", "birth_year"),
    ("phone_tail", "postcode_head"),
    ("email_user_head", "postcode_head"),
    # One typo in the email username (and another in a name): the tail or the head survives.
    ("email_user_tail", "email_domain", "first_initial"),
    ("email_user_head", "email_domain", "last_name_norm"),
    # Only the place in common (every name misspelt or replaced): affordable on small populations only.
    ("postcode", "city_norm"),
    # The place with a typo in the postcode or the city, and a typo (or a whole other value) in each name
    # or the birth date: the sound of the city with the postcode's digits in any order or without the last
    # one, an initial, the birth year or day. Kept by `select_blocking_rules` only where the data can
    # afford them (their blocks are a town's people: small populations, or postcodes that few share).
    ("postcode_sorted", "city_ph"),
    ("postcode_head", "city_ph"),
    ("postcode", "last_initial"),
    ("postcode", "first_initial"),
    ("city_ph", "last_initial"),
    ("city_ph", "first_initial"),
    ("last_name_ph", "city_ph"),
    ("first_name_ph", "city_ph"),
    ("last_name_ph", "postcode_head"),
    ("first_name_ph", "postcode_head"),
    ("birth_year", "city_ph"),
    ("birth_md", "city_ph"),
    # One field and nothing else exact: every other field misspelt or replaced.
    ("birth_date",),
    ("postcode",),
    ("city_ph",),
    # A name and nothing else in common (a call-center contact): affordable on small populations only.
    ("first_name_norm", "last_name_ph"),
    ("first_name_ph", "last_name_norm"),
    ("last_name_norm", "first_initial"),
]

# A rule whose own blocks would give more than this many pairs per record (on the deployment's whole
# population) is left out: its blocks grow with the square of the population (a common surname and an
# initial), and the pairs it alone would find are also found by the other, narrower rules.
MAX_PAIRS_PER_RECORD_PER_RULE = 4.0


def _rule(keys: tuple[str, ...]):
    return block_on(*keys)


def prediction_blocking_rules(keys: list[tuple[str, ...]] | None = None) -> list:
    """Blocking rules for prediction: the given keys (default: every candidate) plus the swapped-names rules
    (always: a swap is rare, so their blocks are small at any size)."""
    return [_rule(k) for k in (BLOCKING_KEYS if keys is None else keys)] + [SWAPPED_NAMES_RULE, *SWAPPED_TYPO_RULES]


def rule_pairs(prepared: pd.DataFrame, keys: list[tuple[str, ...]] | None = None) -> pd.DataFrame:
    """Pairs each candidate key would compare on its own (records agreeing on every key column)."""
    keys = BLOCKING_KEYS if keys is None else keys
    con = duckdb.connect()
    try:
        con.register("prepared", prepared)
        rows = []
        for k in keys:
            cols = ", ".join(k)
            not_null = " AND ".join(f"{c} IS NOT NULL" for c in k)
            pairs = con.execute(
                f"SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM "
                f"(SELECT count(*) AS n FROM prepared WHERE {not_null} GROUP BY {cols})").fetchall()[0][0]
            rows.append({"keys": k, "pairs": int(pairs)})
    finally:
        con.close()
    return pd.DataFrame(rows)


def select_blocking_rules(prepared: pd.DataFrame, population: int | None = None,
                          max_pairs_per_record: float = MAX_PAIRS_PER_RECORD_PER_RULE) -> tuple[list, pd.DataFrame]:
    """The candidate keys this data can afford: each key's pairs counted on `prepared` and scaled to the
    whole population (`population` records; `prepared` may be a uniform sample of them, pairs then grow
    with the square of the ratio). Returns (keys kept, counts with `population_pairs` and `kept`)."""
    n = len(prepared)
    population = max(population or n, n)
    counts = rule_pairs(prepared)
    scale = (population / n) ** 2 if n else 1.0
    counts["population_pairs"] = (counts["pairs"] * scale).round().astype("int64")
    counts["kept"] = (counts["population_pairs"] <= max_pairs_per_record * population) & (counts["pairs"] > 0)
    kept = [k for k, keep in zip(counts["keys"], counts["kept"]) if keep]
    return kept, counts


# Which comparison each matching-frame column feeds: a training rule that blocks on a column leaves
# that comparison unestimated in its session; a comparison whose fields the data leaves empty is not
# trained at all (its weights stay 0, see `neutralise`).
COMPARISON_OF_COLUMN = {
    "first_name_norm": "first_name", "last_name_norm": "last_name", "birth_date": "birth_date",
    "email_norm": "email", "phone_e164": "phone", "phone_mobile": "phone", "postcode": "address",
    "street_norm": "address", "city_norm": "address",
}
COMPARISON_FIELDS = {
    "first_name": ("first_name_norm",), "last_name": ("last_name_norm",), "birth_date": ("birth_date",),
    "email": ("email_norm",), "phone": ("phone_mobile",),
    "address": ("street_norm", "postcode", "city_norm", "phone_home"),
}


def deterministic_rules_for_prior(used: set[str] | None = None) -> list:
    """Rules that admit (almost) only true matches, to start the estimate of how often two random records
    match; only those whose columns the data fills (`used`: matching-frame columns, None = all)."""
    keys = [("first_name_norm", "last_name_norm", "birth_date"), ("email_norm", "first_name_norm"),
            ("phone_e164", "first_name_norm", "last_name_norm"), ("first_name_norm", "last_name_norm", "postcode")]
    return [block_on(*k) for k in keys if used is None or set(k) <= used]


# EM blocking rules, in order of preference. Not first + last name first: common names and namesakes
# fill that block and EM takes them for matches (it then learns that matches often disagree on birth
# date); it is the last resort for data with neither birth dates nor contacts. Not a landline: a block
# of households.
EM_RULE_KEYS: list[tuple[str, ...]] = [
    ("birth_date",),
    ("email_norm",),
    ("last_name_norm", "postcode"),
    ("phone_mobile",),
    ("first_name_norm", "last_name_norm"),
]
# An EM session needs matches to learn from and must stay affordable.
EM_MIN_PAIRS = 50
EM_MAX_PAIRS = 20_000_000


def em_training_rules(prepared: pd.DataFrame | None = None) -> list:
    """EM blocking rules chosen from the fields the data fills: each rule whose block has enough pairs,
    until every comparison with data is left free (estimated) by at least two sessions (one if only one
    can). With no frame, the rules for a data set that fills every field."""
    if prepared is None:
        return [block_on(*k) for k in EM_RULE_KEYS[:3]]
    counts = rule_pairs(prepared, EM_RULE_KEYS)
    usable = [k for k, n in zip(counts["keys"], counts["pairs"]) if EM_MIN_PAIRS <= n <= EM_MAX_PAIRS]
    with_data = {c for c, cols in COMPARISON_FIELDS.items() if any(prepared[col].notna().any() for col in cols)}
    chosen: list[tuple[str, ...]] = []
    for keys in usable:
        free_before = {c: sum(1 for k in chosen if c not in {COMPARISON_OF_COLUMN.get(x) for x in k}) for c in with_data}
        if all(n >= 2 for n in free_before.values()):
            break
        chosen.append(keys)
    return [block_on(*k) for k in chosen]


def untrained_comparisons(prepared: pd.DataFrame, min_share: float = 0.01) -> list[str]:
    """Comparisons whose fields fewer than `min_share` of the records fill: nothing to learn them from."""
    n = max(len(prepared), 1)
    return [c for c, cols in COMPARISON_FIELDS.items()
            if max(float(prepared[col].notna().sum()) / n for col in cols) < min_share]


def neutralise(model: dict, names: list[str]) -> dict:
    """Give every level of these comparisons the weight 0 (m = u): a field the training data left empty
    must weigh nothing, rather than whatever the floors would make of levels never observed."""
    for comparison in model["comparisons"]:
        if comparison["output_column_name"] in names:
            for lvl in comparison["comparison_levels"]:
                if not lvl.get("is_null_level"):
                    lvl["m_probability"] = lvl["u_probability"] = 1.0 / len(comparison["comparison_levels"])
                    lvl.pop("tf_adjustment_column", None)
                    lvl.pop("tf_adjustment_weight", None)
    return model


# Real data has errors the training sample may not show: no level is allowed to
# say "matches never look like this" (one wrong digit would then veto a link).
M_FLOOR_ELSE = 0.01
M_FLOOR_LEVEL = 0.001
U_FLOOR = 1e-7


def regularise(model: dict) -> dict:
    """Floor m and u so every level has a finite weight, and cap partial levels at the exact level's weight.

    - "All other comparisons" gets m >= 1% (a disagreement costs at most ~6.6);
      other levels m >= 0.1%; m is renormalised over the non-null levels.
    - A level never seen among random pairs gets u = 1e-7 (the sampling resolution).
    - No partial level (typo, swap, nickname ...) outweighs exact agreement on the same attribute.
    """
    for comparison in model["comparisons"]:
        levels = [lvl for lvl in comparison["comparison_levels"] if not lvl.get("is_null_level")]
        for i, lvl in enumerate(levels):
            floor = M_FLOOR_ELSE if i == len(levels) - 1 else M_FLOOR_LEVEL
            lvl["m_probability"] = max(float(lvl.get("m_probability") or 0.0), floor)
            lvl["u_probability"] = max(float(lvl.get("u_probability") or 0.0), U_FLOOR)
        total = sum(lvl["m_probability"] for lvl in levels)
        for lvl in levels:
            lvl["m_probability"] /= total
        exact = levels[0]
        exact_ratio = exact["m_probability"] / exact["u_probability"]
        for lvl in levels[1:-1]:
            if lvl["m_probability"] / lvl["u_probability"] > exact_ratio:
                lvl["u_probability"] = lvl["m_probability"] / exact_ratio
    return model


def settings_creator(blocking_keys: list[tuple[str, ...]] | None = None) -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name=UNIQUE_ID,
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=prediction_blocking_rules(blocking_keys),
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
        max_iterations=20,
        em_convergence=0.0001,
    )


def refine_u_on_random_pairs(db_api: DuckDBAPI, prepared: pd.DataFrame, model: dict, *, max_pairs: float,
                             seed: int = 42, iterations: int = 30) -> dict:
    """Re-estimate u on a random sample of pairs, counting each pair as a non-match only as far as it is one.

    Splink's `estimate_u_using_random_sampling` takes every sampled pair for a non-match. With several
    records per person that is not so: nearly every random pair that agrees on an email or a mobile
    number is the same person, so u comes out about as large as the prior and exact agreement on an
    email is worth almost nothing (and less still as the data grows). Here a sample of the same kind
    (all pairs inside random buckets of records) is scored once with the trained model, then u is
    re-estimated with every pair counting as a non-match with weight 1 - P(match): the E and M steps
    of EM on a random sample, for u only, with m and the prior held fixed. Term-frequency adjusted
    exact levels keep their weight (log2(m / frequency of the value) does not depend on u).
    Returns the model with the new u values (`regularise` still applies its floors).
    """
    import copy
    import math
    import zlib

    n = len(prepared)
    buckets = max(1, round(n * (n - 1) / 2 / max_pairs))
    frame = prepared.copy()
    frame["u_bucket"] = [zlib.crc32(f"{seed}|{rid}".encode()) % buckets for rid in frame[UNIQUE_ID]]
    table = db_api.register(frame, dataset_display_name="u_sample_records")
    con = db_api.duckdb_con
    model = copy.deepcopy(model)
    settings = copy.deepcopy(model)
    settings["blocking_rules_to_generate_predictions"] = [
        {"blocking_rule": "l.u_bucket = r.u_bucket", "sql_dialect": "duckdb"}
    ]
    settings.pop("linker_uid", None)
    scored = Linker(table, settings, log_level=None).inference.predict(warning_mode="never")

    comps = []  # (name, non-null levels in gamma order high..0, gamma of a tf-adjusted exact level or None)
    for comparison in model["comparisons"]:
        levels = [lvl for lvl in comparison["comparison_levels"] if not lvl.get("is_null_level")]
        tf_gamma = next((len(levels) - 1 - i for i, lvl in enumerate(levels) if lvl.get("tf_adjustment_column")), None)
        comps.append((comparison["output_column_name"], levels, tf_gamma))
    cols = []
    for name, _, tf_gamma in comps:
        cols.append(f"gamma_{name}::INTEGER AS g_{name}")
        if tf_gamma is not None:
            cols.append(f"coalesce(mw_{name}, 0) + coalesce(mw_tf_adj_{name}, 0) AS tf_{name}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE __u_sample AS SELECT {', '.join(cols)} FROM {scored.physical_name}")
    scored.drop_table_from_database_and_remove_from_cache()

    prior = float(model["probability_two_random_records_match"])
    log_prior = math.log2(prior / (1 - prior))
    for _ in range(iterations):
        terms = []
        for name, levels, tf_gamma in comps:
            cases = " ".join(
                f"WHEN {len(levels) - 1 - i} THEN {math.log2(lvl['m_probability'] / lvl['u_probability'])!r}"
                for i, lvl in enumerate(levels)
                if (len(levels) - 1 - i) != tf_gamma
            )
            expr = f"CASE g_{name} {cases} ELSE 0 END"
            if tf_gamma is not None:
                expr = f"CASE WHEN g_{name} = {tf_gamma} THEN tf_{name} ELSE {expr} END"
            terms.append(expr)
        weight = f"{log_prior!r} + " + " + ".join(terms)
        con.execute(f"CREATE OR REPLACE TEMP TABLE __u_weight AS SELECT *, 1 - 1 / (1 + pow(2, -({weight}))) AS q FROM __u_sample")
        changed = 0.0
        for name, levels, _ in comps:
            rows = con.execute(f"SELECT g_{name}, sum(q) FROM __u_weight WHERE g_{name} <> -1 GROUP BY 1").fetchall()
            mass = {int(g): float(w) for g, w in rows}
            denom = sum(mass.values())
            if denom <= 0:
                continue
            # A level no non-match reached gets one pseudo-observation: the sample only tells
            # that u is below about 1 / (pairs compared).
            for i, lvl in enumerate(levels):
                new = max(mass.get(len(levels) - 1 - i, 0.0), 1.0) / denom
                changed = max(changed, abs(math.log2(new / lvl["u_probability"])))
                lvl["u_probability"] = new
        if changed < 0.01:
            break
    con.execute("DROP TABLE IF EXISTS __u_sample")
    con.execute("DROP TABLE IF EXISTS __u_weight")
    return model


# Splink's session peaked at 3.99-5.84 GB of a 1M-record run without a limit (DuckDB's default: 80% of RAM);
# at 3GB the scoring kept its speed (76.1 s vs 79.5 s) and the whole run peaked at 3.92 GiB; at 2GB it spilled
# (84 s -> 142 s). docs/benchmarks.md, 2026-12-07 evening. `none`: DuckDB's default.
SPLINK_MEMORY_LIMIT_VARIABLE = "CUSTOMER_PIPELINE_SPLINK_MEMORY_LIMIT"
DEFAULT_SPLINK_MEMORY_LIMIT = "3GB"


@contextlib.contextmanager
def duckdb_session(n_rows: int, work_dir: str | Path | None = None, memory_limit: str | None = None) -> Iterator[DuckDBAPI]:
    """An in-process DuckDB for one Splink job; a temporary file (deleted afterwards) for large inputs."""
    tmp = tempfile.mkdtemp(prefix="splink_", dir=work_dir)
    try:
        if n_rows > ON_DISK_ABOVE_ROWS:
            con = duckdb.connect(os.path.join(tmp, "splink.duckdb"))
        else:
            con = duckdb.connect()
        con.execute(f"SET temp_directory = '{tmp}'")
        from customer_pipeline.warehouse import memory_limit as configured

        limit = memory_limit or configured(SPLINK_MEMORY_LIMIT_VARIABLE, DEFAULT_SPLINK_MEMORY_LIMIT)
        if limit:
            con.execute(f"SET memory_limit = '{limit}'")
        try:
            yield DuckDBAPI(con)
        finally:
            con.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def new_linker(db_api: DuckDBAPI, prepared: pd.DataFrame | SplinkDataFrame, model: SettingsCreator | dict | str | Path,
               ) -> Linker:
    """Register the matching frame and build a Linker over it.

    A model trained by this pipeline carries the blocking keys chosen on its training data (in
    `customer_pipeline.blocking_keys`); an older saved model is scored with every candidate rule.
    The pipeline's own key `customer_pipeline` (training fingerprint) is not a Splink setting and is
    dropped here. Level conditions listed in EQUIVALENT_SQL are swapped for their faster form (same
    pairs, same weights).
    """
    # A frame already registered (a second linker over the same records) is reused.
    table = prepared if isinstance(prepared, SplinkDataFrame) else db_api.register(prepared, dataset_display_name="person_records")
    if isinstance(model, (str, Path)):
        model = json.loads(Path(model).read_text(encoding="utf-8"))
    if isinstance(model, dict):
        dialect = db_api.sql_dialect.sql_dialect_str
        info = model.get("customer_pipeline") or {}
        keys = [tuple(k) for k in info["blocking_keys"]] if "blocking_keys" in info else None
        model = {k: v for k, v in model.items() if k != "customer_pipeline"}
        model["blocking_rules_to_generate_predictions"] = [
            rule.create_blocking_rule_dict(dialect) for rule in prediction_blocking_rules(keys)
        ]
        model["comparisons"] = [
            {**comparison, "comparison_levels": [
                {**lvl, "sql_condition": EQUIVALENT_SQL.get(lvl.get("sql_condition"), lvl.get("sql_condition"))}
                if lvl.get("sql_condition") in EQUIVALENT_SQL else lvl
                for lvl in comparison["comparison_levels"]
            ]}
            for comparison in model.get("comparisons", [])
        ]
        if dialect != "duckdb":
            model = model_in_dialect(model, dialect)
    return Linker(table, model, log_level=None)


def level_sql_in_dialect(dialect: str) -> dict[str, str]:
    """Each level condition of the comparisons in DuckDB SQL (what a saved model holds) -> the same
    condition in `dialect`, both emitted by the one definition in `comparisons()`."""
    duckdb_levels = settings_creator().create_settings_dict("duckdb")["comparisons"]
    other_levels = settings_creator().create_settings_dict(dialect)["comparisons"]
    return {
        a["sql_condition"]: b["sql_condition"]
        for ca, cb in zip(duckdb_levels, other_levels, strict=True)
        for a, b in zip(ca["comparison_levels"], cb["comparison_levels"], strict=True)
    }


def model_in_dialect(model: dict, dialect: str) -> dict:
    """A saved (DuckDB) model with its level conditions in `dialect`: the same levels, m and u, so the
    same model scores on another backend. A level this version does not define is an error (a model
    saved by an older version: score it on DuckDB or retrain)."""
    mapping = level_sql_in_dialect(dialect)
    comparisons_out = []
    for comparison in model.get("comparisons", []):
        levels = []
        for lvl in comparison["comparison_levels"]:
            condition = lvl.get("sql_condition")
            if condition not in mapping:
                raise ValueError(f"comparison {comparison.get('output_column_name')!r}: level {condition!r} is not one "
                                 f"of this version's comparisons, so it has no {dialect} form; retrain the model")
            levels.append({**lvl, "sql_condition": mapping[condition]})
        comparisons_out.append({**comparison, "comparison_levels": levels})
    return {**model, "comparisons": comparisons_out, "sql_dialect": dialect}
