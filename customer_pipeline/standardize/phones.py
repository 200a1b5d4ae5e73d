"""Phone numbers: parsed with phonenumbers against the record's country, as E.164 with validity and type."""

import re

import numpy as np
import pandas as pd
import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from customer_pipeline.standardize._text import clean_text, is_missing, safe_call

PHONE_COLUMNS = ["phone_e164", "phone_valid", "phone_type"]
_TYPES = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
}
_SUPPORTED = phonenumbers.SUPPORTED_REGIONS
_IDD_00 = re.compile(r"^\s*00(?=[1-9])")


def _region(country) -> str | None:
    if is_missing(country):
        return None
    code = str(country).strip().upper()
    return {"UK": "GB"}.get(code, code) if code in _SUPPORTED or code == "UK" else None


def standardize_phone(value, default_country=None) -> tuple[str | None, bool, str | None]:
    """(phone_e164, phone_valid, phone_type); E.164 is None when unparseable or of impossible length."""
    text = clean_text(value)
    if text is None:
        return None, False, None
    # "0044 …" is international in most of Europe but not under the US dialling plan.
    text = _IDD_00.sub("+", text)
    try:
        number = phonenumbers.parse(text, _region(default_country))
    except NumberParseException:
        return None, False, None
    if not phonenumbers.is_possible_number(number):
        return None, False, None
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    # number_type is UNKNOWN exactly when is_valid_number is False; one call instead of two
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        return e164, False, None
    return e164, True, _TYPES.get(kind, "other")


def standardize_phones(raw: pd.Series, default_country: pd.Series | None = None) -> pd.DataFrame:
    """Vectorised ``standardize_phone``; each distinct (number, country) pair is parsed once."""
    if default_country is None:
        default_country = pd.Series(None, index=raw.index, dtype=object)
    present = raw.notna()
    pairs = pd.DataFrame({"p": raw[present].astype(str), "c": default_country[present].astype(object).fillna("")})
    table = np.empty((len(raw), len(PHONE_COLUMNS)), dtype=object)
    table[:] = (None, False, None)
    if len(pairs):
        codes, uniques = pd.factorize(pairs["p"].str.replace("\x1f", " ", regex=False) + "\x1f" + pairs["c"].astype(str))
        results = [safe_call(standardize_phone, *u.split("\x1f", 1), default=(None, False, None)) for u in uniques]
        table[np.flatnonzero(present.to_numpy())] = np.array(results, dtype=object).reshape(-1, 3)[codes]
    out = pd.DataFrame(table, index=raw.index, columns=PHONE_COLUMNS)
    out["phone_valid"] = out["phone_valid"].astype(bool)
    return out
