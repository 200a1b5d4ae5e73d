"""Issue 11, defect 4: future business dates and non-text name traits stop at staging."""

import datetime as dt
import json

import duckdb
import pandas as pd

from customer_pipeline import freshness
from customer_pipeline.identity.survivorship import build_golden
from customer_pipeline.ingest.files import load_app_events, rebuild_app_identities
from customer_pipeline.standardize.person_records import INPUT_COLUMNS, standardize_person_records
from customer_pipeline_tests.landing import app_event, write

NOW = dt.datetime(2026, 11, 1, 12, 0)


def _records(*rows: dict) -> pd.DataFrame:
    base = {c: None for c in INPUT_COLUMNS}
    return pd.DataFrame([{**base, "source": "pos", "default_country": "DE", **r} for r in rows]).astype(object)


def test_future_business_dates_are_nulled_and_flagged():
    out = standardize_person_records(_records(
        {"source_key": "card:F", "record_created_at_raw": "2099-01-01T10:00:00", "record_updated_at_raw": "2099-01-01T10:00:00",
         "marketing_consent_raw": "Y", "marketing_consent_at_raw": "2099-01-01T10:00:00"},
        {"source_key": "card:T", "record_created_at_raw": "2026-11-02T06:00:00"},   # within a day: clocks differ
    ), None, NOW)
    future, tomorrow = out.iloc[0], out.iloc[1]
    assert pd.isna(future["record_created_at"]) and pd.isna(future["record_updated_at"])
    assert pd.isna(future["marketing_consent_at"]) and bool(future["marketing_consent"])
    assert future["future_dated_fields"] == "record_created,record_updated,marketing_consent"
    assert tomorrow["record_created_at"] == pd.Timestamp("2026-11-02 06:00") and pd.isna(tomorrow["future_dated_fields"])


def test_first_and_last_seen_ignore_future_dates():
    frame = pd.DataFrame([
        {"source": "pos", "source_key": "card:1", "record_created_at": pd.Timestamp("2026-01-01"),
         "record_updated_at": pd.Timestamp("2026-01-01")},
        {"source": "shop", "source_key": "customer:1", "record_created_at": pd.Timestamp("2099-01-01"),
         "record_updated_at": pd.Timestamp("2099-01-01")},
    ])
    frame["record_id"] = frame["source"] + "|" + frame["source_key"]
    xref = pd.DataFrame({"customer_id": ["C1", "C1"], "record_id": frame["record_id"]})
    golden = build_golden(frame, xref, NOW).iloc[0]
    assert golden["first_seen_at"] == pd.Timestamp("2026-01-01") == golden["last_seen_at"]


def test_freshness_ignores_future_business_timestamps():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.pos_loyalty_signups (signed_up_at VARCHAR)")
    con.execute("INSERT INTO raw.pos_loyalty_signups VALUES ('2099-01-01T10:00:00'), ('2026-11-01T08:00:00Z')")
    newest = freshness.newest_records(con, NOW)
    assert newest["pos"] == dt.datetime(2026, 11, 1, 8, 0)
    sla = freshness.Sla(dt.timedelta(hours=26), dt.timedelta(hours=30))
    [pos] = freshness.measure(con, {"pos": sla}, now=NOW)
    assert pos.record_lag == dt.timedelta(hours=4)


def test_a_json_object_as_a_name_trait_is_null_and_flagged(tmp_path):
    landing = tmp_path / "landing"
    lines = [app_event("m1", user="7", traits={"firstName": "Anna", "lastName": "Berg"}, timestamp="2026-10-01T10:00:00Z"),
             app_event("m2", user="7", traits={"firstName": {"X": 1}, "lastName": ["B"], "phone": 4915112345678,
                                              "email": True}, timestamp="2026-10-02T10:00:00Z")]
    write(landing / "app_events/events_2026-10-02T10.jsonl", ("\n".join(lines) + "\n").encode())
    con = duckdb.connect()
    for schema in ("raw", "meta", "quarantine"):
        con.execute(f"CREATE SCHEMA {schema}")
    load_app_events(con, landing, "r1")
    rebuild_app_identities(con)
    rows = con.execute("SELECT message_id, first_name, last_name, phone, email, non_text_traits "
                       "FROM raw.app_identifies ORDER BY message_id").fetchall()
    assert rows == [("m1", "Anna", "Berg", None, None, None),
                    ("m2", None, None, "4915112345678", None, "email,first_name,last_name")]
    out = standardize_person_records(_records({"source": "app", "source_key": "user:7", "first_name_raw": None,
                                               "non_text_fields_raw": "email,first_name,last_name"}), None, NOW)
    assert out.iloc[0]["non_text_fields"] == "email,first_name,last_name"
    assert json.dumps({"X": 1}) not in str(out.iloc[0].to_dict())
