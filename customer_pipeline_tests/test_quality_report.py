"""The data-quality report's figures on a small hand-made dataset (exact numbers)."""

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from customer_pipeline import warehouse as wh
from customer_pipeline.defs.quality.assets import data_quality_report
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.quality import report

NOW = dt.datetime(2026, 11, 20, 12, 0)
T, F = True, False


def _ago(days: int | None):
    return None if days is None else NOW - dt.timedelta(days=days)


def _people() -> pd.DataFrame:
    cols = ("source", "first_name", "last_name", "email", "email_valid", "email_corrected", "phone_raw",
            "phone_valid", "phone_e164", "birth_date_raw", "birth_date_valid", "has_contact_channel",
            "email_suppressed", "email_unsubscribed", "opted_out", "do_not_call", "record_updated_at")
    rows = [
        ("pos", "Anna", "Meier", "anna@x.de", T, "anna@x.de", "030 1", T, "+49301", "1980-01-01", T, T, F, F, F, F, _ago(10)),
        ("pos", "Ben", None, "ANNA@x.de", T, "anna@x.de", None, F, None, "31.02.1990", F, T, T, F, F, F, _ago(400)),
        ("pos", "  ", "Cole", "bad", F, None, "12", F, None, None, F, F, F, F, T, T, None),
        ("pos", "Dora", "Ende", "dora@x.de", T, "dora@x.de", "030 2", T, "+49302", "1970-05-05", T, T, F, F, F, F, _ago(2)),
        ("shop", "Eve", "Fox", "c@y.fr", T, "c@y.fr", "+33 1 23 45 67 89", T, "+33123456789", None, F, T, F, T, F, F, _ago(366)),
        # same phone as a pos record: a duplicate across sources, not within one
        ("shop", "Eva", "Fox", "c@y.fr", T, "c@y.fr", "+49 30 1", T, "+49301", None, F, T, F, F, F, F, _ago(1)),
    ]
    return pd.DataFrame(rows, columns=cols)


REJECTED = pd.DataFrame({"source": ["pos", "pos", "call_center"]})
RAW_COUNTS = pd.DataFrame({"source": ["pos", "pos", "shop", "call_center"], "rows": [4, 10, 7, 3]})


@pytest.fixture(scope="module")
def metrics() -> pd.DataFrame:
    frame, _ = report.build_report(_people(), REJECTED, RAW_COUNTS, now=NOW, run_id="r1")
    return frame


def _get(metrics, source, metric, field=None):
    m = metrics[(metrics["source"] == source) & (metrics["metric"] == metric)]
    m = m[m["field"].isna()] if field is None else m[m["field"] == field]
    assert len(m) == 1, (source, metric, field)
    row = m.iloc[0]
    return int(row["numerator"]), None if pd.isna(row["denominator"]) else int(row["denominator"])


EXPECTED = [
    ("pos", "records", None, (4, None)),
    ("shop", "records", None, (2, None)),
    ("all", "records", None, (6, None)),
    ("pos", "completeness", "first_name", (3, 4)),  # blank counts as missing
    ("pos", "completeness", "last_name", (3, 4)),
    ("pos", "completeness", "email", (4, 4)),
    ("shop", "completeness", "birth_date_raw", (0, 2)),
    ("pos", "validity", "email", (3, 4)),
    ("all", "validity", "email", (5, 6)),
    ("pos", "validity", "phone", (2, 3)),
    ("all", "validity", "phone", (4, 5)),
    ("pos", "validity", "birth_date", (2, 3)),
    ("shop", "validity", "birth_date", (0, 0)),
    ("pos", "contactable", None, (3, 4)),
    ("all", "contactable", None, (5, 6)),
    ("pos", "duplicate_rate", "email_corrected", (2, 3)),  # case differences are the same email
    ("shop", "duplicate_rate", "email_corrected", (2, 2)),
    ("all", "duplicate_rate", "email_corrected", (4, 5)),
    ("pos", "duplicate_rate", "phone_e164", (0, 2)),
    ("all", "duplicate_rate", "phone_e164", (0, 4)),  # across sources is not a duplicate
    ("pos", "quarantine_rate", None, (2, 16)),
    ("shop", "quarantine_rate", None, (0, 7)),
    ("call_center", "quarantine_rate", None, (1, 4)),
    ("all", "quarantine_rate", None, (3, 27)),
    ("pos", "email_suppressed", None, (1, 4)),
    ("shop", "email_unsubscribed", None, (1, 2)),
    ("all", "opted_out", None, (1, 6)),
    ("pos", "do_not_call", None, (1, 4)),
    ("pos", "stale", "record_updated_at", (1, 3)),  # no update time: not counted
    ("shop", "stale", "record_updated_at", (1, 2)),  # 366 days > 365
    ("all", "stale", "record_updated_at", (2, 5)),
]


@pytest.mark.parametrize(("source", "metric", "field", "expected"), EXPECTED)
def test_report_figures(metrics, source, metric, field, expected):
    assert _get(metrics, source, metric, field) == expected


def test_values_are_shares_and_empty_denominators_null(metrics):
    pos_email = metrics[(metrics["source"] == "pos") & (metrics["field"] == "email") & (metrics["metric"] == "validity")]
    assert pos_email["value"].iloc[0] == pytest.approx(0.75)
    shop_birth = metrics[(metrics["source"] == "shop") & (metrics["metric"] == "validity") & (metrics["field"] == "birth_date")]
    assert pd.isna(shop_birth["value"].iloc[0])
    assert list(metrics.columns) == list(report.COLUMNS)
    assert set(metrics["run_id"]) == {"r1"} and set(metrics["measured_at"]) == {NOW}
    assert list(dict.fromkeys(metrics["source"])) == ["pos", "shop", "call_center", "all"]


def test_markdown_shows_every_section():
    _, md = report.build_report(_people(), REJECTED, RAW_COUNTS, now=NOW, run_id="r1")
    for title in ("Completeness", "Validity", "Duplicates within each source", "Quarantined rows",
                  "Suppression and opt-out", "Stale records"):
        assert f"## {title}" in md
    assert "| validity | email | 75.0% (3/4) |" in md


def _seed(path):
    with wh.connect(path) as con:
        people = _people()
        people["record_updated_at"] = pd.to_datetime(people["record_updated_at"])
        wh.replace_table(con, "staging.person_records", people)
        wh.replace_table(con, "quarantine.rejected_records", REJECTED)
        wh.replace_table(con, "raw.pos_loyalty_signups", pd.DataFrame({"_source": ["pos"] * 14}))


def test_asset_appends_history_and_refreshes_latest(tmp_path):
    path = tmp_path / "w.duckdb"
    _seed(path)
    resources = {"warehouse": WarehouseResource(path=str(path))}
    first = dg.materialize([data_quality_report], resources=resources)
    second = dg.materialize([data_quality_report], resources=resources)
    assert first.success and second.success
    with wh.connect(path, read_only=True) as con:
        runs = con.execute("SELECT DISTINCT run_id FROM gold.data_quality_report").fetchall()
        latest = con.execute("SELECT DISTINCT run_id FROM gold.data_quality_report_latest").fetchall()
        lines = report.headline_figures(con)
    assert {r[0] for r in runs} == {first.run_id, second.run_id}
    assert latest == [(second.run_id,)]
    assert lines[0] == "Person records: 6 (pos 4, shop 2)"
    assert "Quarantined rows: 3 (17.6% of rows read)" in lines  # 3 / (3 + 14)
    meta = second.get_asset_materialization_events()[0].materialization.metadata
    assert "## Completeness" in meta["report"].value


def test_headline_figures_without_a_report(tmp_path):
    with wh.connect(tmp_path / "w.duckdb") as con:
        assert report.headline_figures(con) == []


def test_valid_email_has_one_definition_the_share_of_emails_given():
    # 4 records, 2 give an email, 1 of them valid: 50% valid of given (25% of all records is another figure)
    df = pd.DataFrame({"email": ["a@x.de", "broken", None, ""], "email_valid": [True, False, None, None],
                       "phone_raw": [None] * 4, "phone_valid": [None] * 4})
    assert report.validity_counts(df, "email") == (1, 2)
    assert report.validity_counts(df, "phone") == (0, 0)
