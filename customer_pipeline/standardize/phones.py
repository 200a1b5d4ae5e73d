"""Phone numbers: parsed with phonenumbers against the record's country, as E.164 with validity and type."""

import re

import numpy as np
import pandas as pd
import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from customer_pipeline.standardize._text import clean_text, is_missing, parallel_map, safe_call

PHONE_COLUMNS = ["phone_e164", "phone_valid", "phone_type"]
_TYPES = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
}
_SUPPORTED = phonenumbers.SUPPORTED_REGIONS
_IDD_00 = re.compile(r"^\s*00(?=[1-9])")
# separators phonenumbers drops while normalising (whitespace is already single spaces after clean_text)
_SEPARATORS = re.compile(r"[ \-.()/]")
# at least 3 digits: a viable number for phonenumbers with or without its separators
_DIGITS_ONLY = re.compile(r"\+?[0-9]{3,}")
_MAX_PARSE_INPUT = 250  # phonenumbers rejects longer input outright
# distinct numbers above which they are parsed in worker processes
PARALLEL_MIN_KEYS = 50_000


def _region(country) -> str | None:
    if is_missing(country):
        return None
    code = str(country).strip().upper()
    return {"UK": "GB"}.get(code, code) if code in _SUPPORTED or code == "UK" else None


def _prepared(value, default_country) -> tuple[str, str | None] | None:
    """(text handed to phonenumbers.parse, region) for one raw value; None when blank.

    phonenumbers keeps only the digits (and a leading '+') of a number written with digits, spaces
    and the separators - . ( ) / (its IDD and national-prefix rules run on those digits), so such
    spellings are reduced to that key: "(0171) 123-4567" and "01711234567" are parsed once."""
    text = clean_text(value)
    if text is None:
        return None
    # "0044 …" is international in most of Europe but not under the US dialling plan.
    text = _IDD_00.sub("+", text)
    if len(text) <= _MAX_PARSE_INPUT:
        key = _SEPARATORS.sub("", text)
        if _DIGITS_ONLY.fullmatch(key):
            text = key
    return text, _region(default_country)


def _parse_prepared(text: str, region: str | None, by_number: dict | None = None) -> tuple[str | None, bool, str | None]:
    """The standardised triple for a prepared text; `by_number` caches the verdict per parsed number."""
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None, False, None
    # every field of the number that possibility, E.164 form and type depend on
    key = (number.country_code, number.national_number, number.italian_leading_zero, number.number_of_leading_zeros)
    if by_number is not None and key in by_number:
        return by_number[key]
    result = _number_verdict(number)
    if by_number is not None:
        by_number[key] = result
    return result


def _number_verdict(number) -> tuple[str | None, bool, str | None]:
    if not phonenumbers.is_possible_number(number):
        return None, False, None
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    # number_type is UNKNOWN exactly when is_valid_number is False; one call instead of two
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        return e164, False, None
    return e164, True, _TYPES.get(kind, "other")


def standardize_phone(value, default_country=None) -> tuple[str | None, bool, str | None]:
    """(phone_e164, phone_valid, phone_type); E.164 is None when unparseable or of impossible length."""
    prepared = _prepared(value, default_country)
    if prepared is None:
        return None, False, None
    return _parse_prepared(*prepared)


_EMPTY = (None, False, None)


def _parse_many(prepared: list[tuple[str, str | None]]) -> list[tuple]:
    """The triple of each prepared (text, region), sharing one cache per parsed number."""
    by_number: dict = {}
    return [safe_call(_parse_prepared, text, region, by_number, default=_EMPTY) for text, region in prepared]


def standardize_phones(raw: pd.Series, default_country: pd.Series | None = None) -> pd.DataFrame:
    """Vectorised ``standardize_phone``: each distinct (number, country) pair is cleaned once, each
    distinct (key, region) parsed once (in worker processes above `PARALLEL_MIN_KEYS` keys)."""
    if default_country is None:
        default_country = pd.Series(None, index=raw.index, dtype=object)
    present = raw.notna()
    pairs = pd.DataFrame({"p": raw[present].astype(str), "c": default_country[present].astype(object).fillna("")})
    table = np.empty((len(raw), len(PHONE_COLUMNS)), dtype=object)
    table[:] = _EMPTY
    if len(pairs):
        codes, uniques = pd.factorize(pairs["p"].str.replace("\x1f", " ", regex=False) + "\x1f" + pairs["c"].astype(str))
        prepared = [safe_call(_prepared, *u.split("\x1f", 1)) for u in uniques.tolist()]
        keys: dict[tuple, int] = {}
        key_of = np.empty(len(prepared) + 1, dtype=np.int64)
        for i, prep in enumerate(prepared):
            key_of[i] = -1 if prep is None else keys.setdefault(prep, len(keys))
        key_of[-1] = -1
        results = np.empty((len(keys) + 1, 3), dtype=object)
        results[:] = _EMPTY  # the last row answers blank values (key -1)
        if keys:
            results[:-1] = np.array(parallel_map(_parse_many, list(keys), PARALLEL_MIN_KEYS), dtype=object).reshape(-1, 3)
        table[np.flatnonzero(present.to_numpy())] = results[key_of[codes]]
    out = pd.DataFrame(table, index=raw.index, columns=PHONE_COLUMNS)
    out["phone_valid"] = out["phone_valid"].astype(bool)
    return out
