"""Birth dates and timestamps."""

from datetime import date, datetime

import pandas as pd
import pytest

from customer_pipeline.standardize.dates import parse_birth_date, parse_birth_dates, parse_timestamps

TODAY = date(2024, 6, 1)


@pytest.mark.parametrize("raw, expected", [
    ("1980-05-17", date(1980, 5, 17)), ("17.05.1980", date(1980, 5, 17)), ("17/05/1980", date(1980, 5, 17)),
    ("1980-05-17T00:00:00Z", date(1980, 5, 17)), ("1980-05-17T23:30:00+02:00", date(1980, 5, 17)),
    ("1980-05-17 00:00:00", date(1980, 5, 17)), (" \ufeff7.5.1980 ", date(1980, 5, 7)),
    ("29.02.2000", date(2000, 2, 29)), ("2000-02-29", date(2000, 2, 29)),
])
def test_formats(raw, expected):
    assert parse_birth_date(raw, TODAY) == (expected, True, None)


@pytest.mark.parametrize("raw, flag", [
    ("29.02.2001", "impossible"), ("2001-02-29", "impossible"), ("31.02.1980", "impossible"), ("1980-13-01", "impossible"),
    ("2030-01-01", "future"), ("02.06.2024", "future"),
    ("1899-12-31", "too_old"), ("31.05.1904", "too_old"),
    ("abc", "unparseable"), ("17 May 1980", "unparseable"), ("1980", "unparseable"),
])
def test_flags(raw, flag):
    assert parse_birth_date(raw, TODAY) == (None, False, flag)


def test_exactly_120_years_is_plausible():
    assert parse_birth_date("1904-06-01", TODAY)[1] is True


@pytest.mark.parametrize("junk", [None, "", "   ", float("nan"), pd.NA, "\ufeff"])
def test_blank_is_null_without_flag(junk):
    assert parse_birth_date(junk, TODAY) == (None, False, None)


def test_vectorised():
    out = parse_birth_dates(pd.Series(["29.02.2000", "29.02.2001", None, "29.02.2000"]), datetime(2024, 6, 1, 12))
    assert out["birth_date"].tolist() == [date(2000, 2, 29), None, None, date(2000, 2, 29)]
    assert out["birth_date_flag"].tolist() == [None, "impossible", None, None]
    assert out["birth_date_valid"].tolist() == [True, False, False, True]


def test_timestamps_to_naive_utc():
    out = parse_timestamps(pd.Series([
        "2024-01-02T10:00:00+01:00", "2024-01-02T10:00:00", "2024-01-02 10:00:00Z", "02.01.2024 10:00", "junk", None, "",
    ]))
    assert str(out.dtype) == "datetime64[us]"
    assert out.tolist()[:4] == [pd.Timestamp("2024-01-02 09:00")] + [pd.Timestamp("2024-01-02 10:00")] * 3
    assert out[4:].isna().all()
