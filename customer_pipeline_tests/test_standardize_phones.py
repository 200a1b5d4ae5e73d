"""Phones: parsed with the record's country as default region."""

import pandas as pd
import pytest

from customer_pipeline.standardize import phones
from customer_pipeline.standardize.phones import standardize_phone, standardize_phones


@pytest.mark.parametrize("raw, country, expected", [
    ("+44 20 7946 0958", "DE", ("+442079460958", True, "fixed_line")),
    ("0044 20 7946 0958", "DE", ("+442079460958", True, "fixed_line")),
    ("0044 20 7946 0958", "US", ("+442079460958", True, "fixed_line")),  # US dials 011, not 00
    ("020 7946 0958", "GB", ("+442079460958", True, "fixed_line")),
    ("(030) 1234567", "DE", ("+49301234567", True, "fixed_line")),
    ("0171 1234567", "DE", ("+491711234567", True, "mobile")),
    ("(201) 555-0123", "US", ("+12015550123", True, "fixed_line_or_mobile")),
    ("+1 212-555-0100", None, ("+12125550100", True, "fixed_line_or_mobile")),
    ("06 12 34 56 78", "FR", ("+33612345678", True, "mobile")),
    ("+33 6 12 34 56 78", "GB", ("+33612345678", True, "mobile")),
    ("020 123 4567", "NL", ("+31201234567", True, "fixed_line")),
])
def test_international_numbers(raw, country, expected):
    assert standardize_phone(raw, country) == expected


def test_valid_length_but_unassigned_is_invalid():
    e164, valid, kind = standardize_phone("+49 1234", "DE")
    assert valid is False and kind is None


@pytest.mark.parametrize("raw, country", [
    ("030 1234567", None),        # national number without a region
    ("12", "DE"), ("abc", "DE"), ("", "DE"), ("   ", "DE"), (None, "DE"), (float("nan"), "DE"), ("\ufeff", "DE"),
    ("030 1234567", "ZZ"),
])
def test_unparseable_is_null_without_error(raw, country):
    e164, valid, kind = standardize_phone(raw, country)
    assert valid is False and kind is None
    assert e164 is None or raw == "12"


def test_bom_before_number():
    assert standardize_phone("\ufeff+44 20 7946 0958", "GB")[0] == "+442079460958"


def test_vectorised_uses_each_records_country():
    out = standardize_phones(pd.Series(["030 1234567", "030 1234567", None]), pd.Series(["DE", "GB", "DE"]))
    assert out["phone_e164"].tolist()[0] == "+49301234567"
    assert out["phone_valid"].tolist() == [True, False, False]


_DIRTY = [
    "+44 (0) 20 7946 0958", "0 044 20 7946 0958", "(+44) 20-7946-0958", "00 44 20 7946 0958", "0044207946095",
    "020.7946.0958", "020/7946/0958", "020 7946 0958", "02079460958", "1-2", "12", "1 2 3", "+1 (0)", "+", "000123",
    "0800 FLOWERS", "+49 (0)30 1234567", "(030) 1234567 ", "0171/1234567 x12", "0171 1234567 ext. 12",
    "٠١٧١ ١٢٣٤٥٦٧", "++44 20 7946 0958", "+0 123", "06 12 34 56 78", "(201) 555-0123", "001 810-393-4678", "x" * 300,
    "0" + "1" * 260,
]
_COUNTRIES = ["GB", "DE", "US", "FR", "NL", "", None, "ZZ", "uk"]


def test_separator_spellings_of_one_number_share_one_parse_with_identical_results():
    import phonenumbers

    raw = pd.Series([p for p in _DIRTY for _ in _COUNTRIES])
    country = pd.Series([c for _ in _DIRTY for c in _COUNTRIES], dtype=object)
    out = standardize_phones(raw, country)
    # what phonenumbers itself says for each value, without the shared key
    for (value, cc), got in zip(zip(raw, country), out.itertuples(index=False)):
        text = phones._IDD_00.sub("+", phones.clean_text(value))
        try:
            number = phonenumbers.parse(text, phones._region(cc))
            expected = phones._number_verdict(number)
        except phonenumbers.NumberParseException:
            expected = (None, False, None)
        assert (None if pd.isna(got.phone_e164) else got.phone_e164, got.phone_valid,
                None if pd.isna(got.phone_type) else got.phone_type) == expected, (value, cc)
        assert standardize_phone(value, cc) == expected


def test_parsing_in_worker_processes_gives_the_serial_result(monkeypatch):
    raw = pd.Series([p for p in _DIRTY for _ in _COUNTRIES] * 2 + [None])
    country = pd.Series([c for _ in _DIRTY for c in _COUNTRIES] * 2 + ["DE"], dtype=object)
    monkeypatch.setenv("CUSTOMER_PIPELINE_WORKERS", "0")
    serial = standardize_phones(raw, country)
    monkeypatch.setenv("CUSTOMER_PIPELINE_WORKERS", "2")
    monkeypatch.setattr(phones, "PARALLEL_MIN_KEYS", 1)
    pd.testing.assert_frame_equal(standardize_phones(raw, country), serial)
