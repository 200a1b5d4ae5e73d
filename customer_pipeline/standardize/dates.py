"""Birth dates (several delivered formats, plausibility) and event timestamps (UTC, naive)."""

import re
from datetime import date, datetime

import numpy as np
import pandas as pd

from customer_pipeline.standardize._text import clean_text, factorize_values, map_unique_tuple

MAX_AGE_YEARS = 120
BIRTH_DATE_COLUMNS = ["birth_date", "birth_date_valid", "birth_date_flag"]
# year-first (YYYY-MM-DD, also as the date part of an ISO timestamp) and day-first (DD.MM.YYYY, DD/MM/YYYY)
_YMD = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ]\d{1,2}:\d{2}.*)?$")
_DMY = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{4})(?: \d{1,2}:\d{2}.*)?$")


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a non-leap target year
        return day.replace(year=day.year - years, day=28)


def parse_birth_date(value, today: date) -> tuple[date | None, bool, str | None]:
    """(birth_date, birth_date_valid, birth_date_flag); flag is unparseable, impossible, future or too_old."""
    text = clean_text(value)
    if text is None:
        return None, False, None
    if m := _YMD.match(text):
        y, mo, d = m.groups()
    elif m := _DMY.match(text):
        d, mo, y = m.groups()
    else:
        return None, False, "unparseable"
    try:
        born = date(int(y), int(mo), int(d))
    except ValueError:  # 31.02.1980, 29.02.2001, month 13
        return None, False, "impossible"
    if born > today:
        return None, False, "future"
    if born < _years_before(today, MAX_AGE_YEARS):
        return None, False, "too_old"
    return born, True, None


def parse_birth_dates(raw: pd.Series, now: datetime | date) -> pd.DataFrame:
    """Vectorised ``parse_birth_date`` relative to ``now``; each distinct value is parsed once."""
    today = now.date() if isinstance(now, datetime) else now
    cols = map_unique_tuple(raw, lambda v: parse_birth_date(v, today), len(BIRTH_DATE_COLUMNS))
    out = pd.DataFrame(dict(zip(BIRTH_DATE_COLUMNS, cols)), index=raw.index)
    out["birth_date_valid"] = out["birth_date_valid"].astype(bool)
    return out


def parse_timestamps(raw: pd.Series) -> pd.Series:
    """ISO 8601 (with or without offset; no offset means UTC) or day-first strings to naive UTC datetime64[us]."""
    codes, uniques = factorize_values(raw)
    if len(uniques) == 0:
        return pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us]")
    text = pd.Series([clean_text(u) for u in uniques], dtype=object)
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    retry = parsed.isna() & text.notna()
    if retry.any():
        # non-ISO leftovers such as "17.05.2023 10:00"; per value so one junk string cannot fail the batch
        parsed[retry] = [_parse_loose(t) for t in text[retry]]
    values = parsed.dt.tz_convert(None).astype("datetime64[us]").to_numpy()
    values = np.append(values, np.datetime64("NaT", "us"))
    return pd.Series(values[codes], index=raw.index, dtype="datetime64[us]")


def _parse_loose(text: str) -> pd.Timestamp:
    try:
        return pd.to_datetime(text, utc=True, dayfirst=True, format="mixed")
    except (ValueError, OverflowError, TypeError):
        return pd.NaT
