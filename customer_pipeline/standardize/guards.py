"""Guards on what a source may push into staging and gold: length limits, formula text, future dates.

Limits and rules are documented in docs/staging-contract.md ("Bounded values, formula text, future
dates"); a value a guard removes stays in the raw layer, so nothing is lost for an investigation.
"""

import datetime as dt

import pandas as pd

from customer_pipeline.standardize._text import clean_text, is_missing

# Longest value (characters, after whitespace is collapsed) each raw field may carry. Generous for
# every real value (names: 100, as most CRMs; email: 254, RFC 5321 path limit) and far below what
# PostgreSQL can index (about 2,700 bytes per index row).
FIELD_LIMITS: dict[str, int] = {
    "first_name_raw": 100,
    "last_name_raw": 100,
    "full_name_raw": 200,
    "email_raw": 254,
    "phone_raw": 50,
    "birth_date_raw": 40,
    "gender_raw": 20,
    "street_raw": 200,
    "postcode_raw": 20,
    "city_raw": 100,
    "country_raw": 60,
}
# Staging text columns BI reads through gold: a value starting with one of these characters is
# prefixed with a single quote (OWASP CSV-injection guidance). Phones are E.164 (a leading '+' is
# their format), titles, genders and countries are canonical codes: not affected.
FORMULA_COLUMNS = ("first_name", "last_name", "street", "postcode", "city", "email")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A business timestamp later than `now` + this is impossible (clocks differ by hours, not days).
FUTURE_TOLERANCE = dt.timedelta(days=1)
FUTURE_COLUMNS = ("record_created_at", "record_updated_at", "marketing_consent_at", "opted_out_at")


def _label(column: str) -> str:
    return column.removesuffix("_raw")


def _join_flags(flags: dict[str, pd.Series], index: pd.Index) -> pd.Series:
    """Comma-separated names of the fields flagged per row; NaN where none is."""
    out = pd.Series(None, index=index, dtype=object)
    for name, hit in flags.items():
        if not hit.any():
            continue
        out = out.where(~hit, out.where(out.isna(), out + ",").fillna("") + name)
    return out


def _too_long(values: pd.Series, limit: int) -> pd.Series:
    def over(v) -> bool:
        if is_missing(v):
            return False
        text = v if isinstance(v, str) else str(v)
        # only a long value pays for the whitespace collapse (padding does not count)
        return len(text) > limit and len(clean_text(text) or "") > limit

    # only a value longer than the limit, or one that is not text, is looked at one by one (the lengths of
    # a million values are one vectorised pass; `over` on each took 4.6 s of staging at 1M records)
    try:
        lengths = values.str.len()
    except AttributeError:  # not a text column (nulls or numbers only)
        return values.map(over).astype(bool)
    look = lengths.gt(limit).fillna(False).astype(bool) | (values.notna() & lengths.isna())
    out = pd.Series(False, index=values.index)
    if look.any():
        out[look] = values[look].map(over).astype(bool)
    return out


def bound_raw_values(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """(raw with every over-long value nulled, `oversized_fields`: comma-separated field names)."""
    flags = {}
    out = raw.copy()
    for column, limit in FIELD_LIMITS.items():
        if column not in out.columns:
            continue
        hit = _too_long(out[column], limit)
        if hit.any():
            out[column] = out[column].astype(object).where(~hit, None)
        flags[_label(column)] = hit
    return out, _join_flags(flags, raw.index)


def is_formula(value) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_START)


def neutralise_formula(value):
    """`'=1+1` for `=1+1`: spreadsheets and BI tools show the text instead of evaluating it."""
    return "'" + value if is_formula(value) else value


def neutralise_formulas(out: pd.DataFrame) -> pd.Series:
    """Prefix formula-leading values of `FORMULA_COLUMNS` in place; returns `formula_fields`."""
    flags = {}
    for column in FORMULA_COLUMNS:
        if column not in out.columns:
            continue
        hit = out[column].map(is_formula).astype(bool)
        if hit.any():
            out[column] = out[column].astype(object).where(~hit, out[column].map(neutralise_formula))
        flags[column] = hit
    return _join_flags(flags, out.index)


def drop_future_timestamps(out: pd.DataFrame, now: dt.datetime) -> pd.Series:
    """Null every `FUTURE_COLUMNS` timestamp beyond `now` + tolerance in place; returns `future_dated_fields`."""
    limit = pd.Timestamp(now).tz_localize(None) + FUTURE_TOLERANCE if pd.Timestamp(now).tzinfo is None \
        else pd.Timestamp(now).tz_convert("UTC").tz_localize(None) + FUTURE_TOLERANCE
    flags = {}
    for column in FUTURE_COLUMNS:
        if column not in out.columns:
            continue
        hit = (out[column] > limit).fillna(False).astype(bool)
        if hit.any():
            out[column] = out[column].mask(hit)
        flags[column.removesuffix("_at")] = hit
    return _join_flags(flags, out.index)
