"""Consent and opt-out flags."""

import pandas as pd
import pytest

from customer_pipeline.standardize.consent import parse_flag, standardize_consent


@pytest.mark.parametrize("raw, expected", [
    ("Y", True), ("y", True), ("true", True), ("1", True), ("Ja", True),
    ("N", False), ("false", False), ("0", False), ("nein", False),
    ("", None), ("  ", None), (None, None), ("maybe", None),
])
def test_parse_flag(raw, expected):
    assert parse_flag(raw) is expected


def test_standardize_consent():
    out = standardize_consent(
        marketing_consent_raw=pd.Series(["Y", "N", "", None]),
        marketing_consent_at_raw=pd.Series(["2024-01-02T10:00:00+01:00", "2024-01-03T00:00:00Z", "2024-01-04", None]),
        opt_out_at_raw=pd.Series([None, "2024-03-01T12:00:00Z", "", "garbled"]),
        do_not_call_raw=pd.Series(["N", "Y", "", None]),
    )
    assert out["marketing_consent"].tolist() == [True, False, pd.NA, pd.NA]
    assert out["marketing_consent_at"][0] == pd.Timestamp("2024-01-02 09:00")
    assert pd.isna(out["marketing_consent_at"][2])  # not asked: no statement time
    assert out["opted_out"].tolist() == [False, True, False, True]
    assert out["opted_out_at"][1] == pd.Timestamp("2024-03-01 12:00")
    assert out["do_not_call"].tolist() == [False, True, False, False]
