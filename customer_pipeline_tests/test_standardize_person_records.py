"""The orchestrating `standardize_person_records` on a small hand-made raw frame."""

from datetime import date, datetime

import duckdb
import pandas as pd
import pytest

from customer_pipeline.standardize.person_records import INPUT_COLUMNS, OUTPUT_COLUMNS, standardize_person_records

CONTRACT_OUTPUT = [
    "first_name", "last_name", "first_name_norm", "last_name_norm", "name_key", "name_swapped", "title", "gender",
    "title_gender_conflict", "email", "email_valid", "email_corrected", "email_domain_typo", "email_suppressed",
    "email_suppressed_at", "email_unsubscribed", "email_unsubscribed_at", "email_suppression_reason",
    "phone_e164", "phone_valid", "phone_type", "birth_date", "birth_date_valid", "birth_date_flag",
    "street", "postcode", "city", "country", "marketing_consent", "marketing_consent_at", "opted_out",
    "opted_out_at", "do_not_call", "record_created_at", "record_updated_at", "has_contact_channel",
    "oversized_fields", "formula_fields", "future_dated_fields", "non_text_fields",
]


def _raw() -> pd.DataFrame:
    rows = [
        dict(source="pos", source_key="card:1", default_country="DE", first_name_raw="\ufeffMüller",
             last_name_raw="hans", email_raw=" Hans.Mueller@GMIAL.com", phone_raw="(030) 1234567",
             birth_date_raw="29.02.2000", gender_raw="M", postcode_raw="1067", city_raw="DRESDEN",
             marketing_consent_raw="Y", marketing_consent_at_raw="2024-01-02T10:00:00+01:00",
             record_created_at_raw="2024-01-02T10:00:00+01:00", record_updated_at_raw="2024-01-02T10:00:00+01:00",
             loyalty_card_no="1"),
        dict(source="call_center", source_key="contact:9", default_country="GB", full_name_raw="Mrs J. Smith",
             phone_raw="0044 20 7946 0958", email_raw="jane@example.com", gender_raw="M", do_not_call_raw="Y",
             opt_out_at_raw="2024-03-01 12:00:00", record_created_at_raw="2024-03-01 12:00:00"),
        dict(source="shop", source_key="customer:5", default_country="NL", first_name_raw="  ", last_name_raw=None,
             email_raw="", phone_raw="   ", birth_date_raw="29.02.2001", country_raw="Nederland",
             postcode_raw="1234ab", city_raw="amsterdam", street_raw=" Damrak  1 ", marketing_consent_raw="",
             shop_customer_id="5"),
        dict(source="app", source_key="anon:d1", default_country=None, first_name_raw="Zoë", last_name_raw="O'BRIEN",
             email_raw="zoe@", birth_date_raw="2999-01-01", anonymous_id="d1"),
    ]
    return pd.DataFrame(rows).reindex(columns=INPUT_COLUMNS).astype(object)


@pytest.fixture(scope="module")
def out() -> pd.DataFrame:
    events = pd.DataFrame({
        "email": ["JANE@example.com ", "jane@example.com", "hans.mueller@gmail.com"],
        "kind": ["unsubscribe", "complaint", "unsubscribe"],
        "occurred_at": ["2024-02-01T00:00:00Z", "2024-02-03T00:00:00Z", "2024-04-01T00:00:00Z"],
    })
    return standardize_person_records(_raw(), events, datetime(2024, 6, 1))


def test_contract_columns(out):
    assert OUTPUT_COLUMNS == CONTRACT_OUTPUT
    assert list(out.columns) == INPUT_COLUMNS + CONTRACT_OUTPUT
    assert len(out) == 4
    for col in ("name_swapped", "title_gender_conflict", "email_valid", "email_domain_typo", "email_suppressed",
                "email_unsubscribed", "phone_valid", "birth_date_valid", "opted_out", "do_not_call", "has_contact_channel"):
        assert out[col].dtype == bool, col
    for col in ("record_created_at", "marketing_consent_at", "opted_out_at", "email_suppressed_at"):
        assert str(out[col].dtype) == "datetime64[us]", col


def test_pos_record(out):
    r = out.iloc[0]
    assert (r.first_name, r.last_name, r.name_key, r.name_swapped) == ("Hans", "Müller", "muller hans", True)
    assert (r.email, r.email_corrected, r.email_domain_typo) == ("hans.mueller@gmial.com", "hans.mueller@gmail.com", True)
    assert r.email_unsubscribed and not r.email_suppressed and r.email_suppression_reason == "unsubscribe"
    assert (r.phone_e164, r.phone_type) == ("+49301234567", "fixed_line")
    assert r.birth_date == date(2000, 2, 29) and r.birth_date_valid
    assert (r.postcode, r.city, r.country) == ("01067", "Dresden", "DE")
    assert r.marketing_consent_at == pd.Timestamp("2024-01-02 09:00")
    assert r.record_created_at == pd.Timestamp("2024-01-02 09:00") and r.has_contact_channel


def test_call_center_record(out):
    r = out.iloc[1]
    assert (r.title, r.first_name, r.last_name, r.gender) == ("Mrs", "J.", "Smith", "M")
    assert r.title_gender_conflict
    assert r.phone_e164 == "+442079460958" and r.phone_valid
    assert r.email_suppressed and r.email_unsubscribed and r.email_suppression_reason == "complaint"
    assert r.opted_out and r.opted_out_at == pd.Timestamp("2024-03-01 12:00") and r.do_not_call
    assert pd.isna(r.marketing_consent)
    assert pd.isna(r.country)  # no address delivered


def test_blank_shop_record(out):
    r = out.iloc[2]
    assert pd.isna(r.first_name) and pd.isna(r.name_key) and pd.isna(r.email) and pd.isna(r.phone_e164)
    assert r.birth_date is None and r.birth_date_flag == "impossible"
    assert (r.street, r.postcode, r.city, r.country) == ("Damrak 1", "1234 AB", "Amsterdam", "NL")
    assert not r.has_contact_channel and not r.do_not_call and not r.opted_out


def test_app_record(out):
    r = out.iloc[3]
    assert (r.first_name, r.last_name, r.first_name_norm, r.last_name_norm) == ("Zoë", "O'Brien", "zoe", "obrien")
    assert not r.email_valid and pd.isna(r.email_corrected)
    assert r.birth_date_flag == "future" and not r.birth_date_valid


def test_nullable_consent(out):
    assert out["marketing_consent"].tolist() == [True, pd.NA, pd.NA, pd.NA]


def test_input_columns_kept_unchanged(out):
    pd.testing.assert_frame_equal(out[INPUT_COLUMNS], _raw())


def test_empty_frame_and_missing_columns():
    empty = standardize_person_records(pd.DataFrame(columns=INPUT_COLUMNS), None, datetime(2024, 6, 1))
    assert list(empty.columns) == INPUT_COLUMNS + CONTRACT_OUTPUT and len(empty) == 0
    partial = standardize_person_records(pd.DataFrame({"source": ["pos"], "email_raw": ["a@web.de"]}), None, datetime(2024, 6, 1))
    assert partial["email"].tolist() == ["a@web.de"] and partial["has_contact_channel"].tolist() == [True]


def test_junk_values_never_raise():
    junk = [None, float("nan"), pd.NA, "", " ", "\ufeff", "\x00\x1f", 12345, 3.5, ["a"], {"k": "v"}, "😀" * 3,
            "x" * 5000, "NULL", "-", "Mr", "@", "+", "00", "31/31/3131", True]
    raw = pd.DataFrame({c: [junk[(i + j) % len(junk)] for i in range(len(junk))] for j, c in enumerate(INPUT_COLUMNS)})
    out = standardize_person_records(raw, pd.DataFrame({"email": junk, "kind": junk, "occurred_at": junk}),
                                     datetime(2024, 6, 1))
    assert len(out) == len(junk) and list(out.columns) == INPUT_COLUMNS + CONTRACT_OUTPUT


def test_output_loads_into_duckdb_with_contract_types(out):
    con = duckdb.connect()
    con.register("person_records", out)
    types = dict(con.sql("select column_name, column_type from (describe person_records)").fetchall())
    assert types["birth_date"] == "DATE"
    assert types["record_created_at"].startswith("TIMESTAMP") and types["marketing_consent"] == "BOOLEAN"
    assert types["name_key"] == "VARCHAR" and types["has_contact_channel"] == "BOOLEAN"
