"""Addresses: country codes, postcodes per country, city case."""

import pandas as pd
import pytest

from customer_pipeline.standardize.addresses import (
    normalize_country, normalize_postcode, proper_case_city, standardize_addresses,
)


@pytest.mark.parametrize("raw, code", [
    ("DE", "DE"), ("de", "DE"), ("Germany", "DE"), ("Deutschland", "DE"), ("Allemagne", "DE"),
    ("UK", "GB"), ("United Kingdom", "GB"), ("Great Britain", "GB"), ("England", "GB"),
    ("the Netherlands", "NL"), ("Nederland", "NL"), ("Holland", "NL"), ("France", "FR"),
    ("USA", "US"), ("United States", "US"), ("Österreich", "AT"), ("\ufeffSpain ", "ES"),
    ("Narnia", None), ("", None), (None, None),
])
def test_country(raw, code):
    assert normalize_country(raw) == code


@pytest.mark.parametrize("raw, country, expected", [
    ("sw1a1aa", "GB", "SW1A 1AA"), ("SW1A  1AA", "GB", "SW1A 1AA"), ("m1 1ae", "GB", "M1 1AE"), ("b338th", "GB", "B33 8TH"),
    ("1234ab", "NL", "1234 AB"), ("1234 ab", "NL", "1234 AB"),
    ("10115", "DE", "10115"), ("1067", "DE", "01067"), ("75 001", "FR", "75001"),
    ("12345", "US", "12345"), ("123456789", "US", "12345-6789"), ("12345-6789", "US", "12345-6789"), ("2134", "US", "02134"),
    ("abc", "DE", "ABC"), ("  ", "DE", None), (None, "GB", None),
])
def test_postcode(raw, country, expected):
    assert normalize_postcode(raw, country) == expected


@pytest.mark.parametrize("raw, expected", [
    ("FRANKFURT AM MAIN", "Frankfurt am Main"), ("stoke-on-trent", "Stoke-on-Trent"), ("MÜNCHEN", "München"),
    ("'s-Hertogenbosch", "'s-Hertogenbosch"), ("  new   york ", "New York"), ("", None),
])
def test_city(raw, expected):
    assert proper_case_city(raw) == expected


def test_country_falls_back_to_default_only_with_an_address():
    out = standardize_addresses(
        street=pd.Series([" Damrak  1 ", None, None]), postcode=pd.Series(["1012lg", None, "sw1a1aa"]),
        city=pd.Series(["amsterdam", None, None]), country=pd.Series([None, None, "United Kingdom"]),
        default_country=pd.Series(["NL", "DE", "DE"]),
    )
    assert out["country"].tolist() == ["NL", None, "GB"]
    assert out["postcode"].tolist() == ["1012 LG", None, "SW1A 1AA"]
    assert out["street"].tolist()[0] == "Damrak 1"
    assert out["city"].tolist()[0] == "Amsterdam"
