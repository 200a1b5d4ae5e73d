"""Issue 11, defects 1 and 2: over-long values and formula text are stopped at staging, before gold and BI."""

import contextlib
import datetime as dt

import duckdb
import pandas as pd
import pytest

from customer_pipeline.cli import main
from customer_pipeline.ingest.formats import CALL_CENTER, KEY_MAX_LENGTH, POS_LOYALTY, POS_TRANSACTIONS
from customer_pipeline.ingest.parsing import parse_csv, parse_jsonl
from customer_pipeline.standardize import guards
from customer_pipeline.standardize.guards import FIELD_LIMITS, FORMULA_START
from customer_pipeline.standardize.person_records import INPUT_COLUMNS, standardize_person_records
from customer_pipeline_tests import pg
from customer_pipeline_tests.landing import app_event, contact_row, csv_bytes, loyalty_row, transaction_row, write

NOW = dt.datetime(2026, 11, 1)
LONG_KEY = "9" * 9_000
HUGE_FIRST = "Anna" * (5 * 2**20 // 4)  # 5 MB
LONG_LAST = "X" * 9_000
GOLD_TEXT_LIMITS = {"first_name": 100, "last_name": 100, "email": 254, "street": 200, "postcode": 20, "city": 100}


def _records(**values) -> pd.DataFrame:
    row = {c: None for c in INPUT_COLUMNS}
    row.update(source="pos", source_key="card:1", default_country="GB", record_created_at_raw="2026-10-01T10:00:00")
    row.update(values)
    return pd.DataFrame([row]).astype(object)


def test_over_long_values_are_nulled_and_flagged():
    out = standardize_person_records(_records(first_name_raw=HUGE_FIRST, last_name_raw=LONG_LAST,
                                              email_raw="a" * 250 + "@example.com", city_raw="London"), None, NOW)
    row = out.iloc[0]
    assert pd.isna(row["first_name"]) and pd.isna(row["last_name"]) and pd.isna(row["email"])
    assert pd.isna(row["first_name_raw"]) and pd.isna(row["last_name_raw"])  # the raw layer keeps the original
    assert row["oversized_fields"] == "first_name,last_name,email" and row["city"] == "London"
    padded = standardize_person_records(_records(first_name_raw="Anna" + " " * 500), None, NOW).iloc[0]
    assert padded["first_name"] == "Anna" and pd.isna(padded["oversized_fields"])  # padding does not count


@pytest.mark.parametrize("dtype", [object, "str"])
def test_the_length_test_looks_at_long_values_only_and_agrees_with_the_rule(dtype):
    """Over the limit: more characters than the limit both raw and after the whitespace collapse; a value
    that is not text is measured as its text. The vectorised pre-test must not change who is flagged."""
    values = ["x" * 5, "x" * 6, "x" * 3 + " " * 9, " ".join("abcdef"), None, "", "ﬀﬀ"]
    if dtype is object:
        values += [float("nan"), 1234567, 12]
    got = guards._too_long(pd.Series(values, dtype=dtype), 5).tolist()
    expected = [False, True, False, True, False, False, False] + ([False, True, False] if dtype is object else [])
    assert got == expected
    assert guards._too_long(pd.Series([None, None]), 5).tolist() == [False, False]


def test_every_limit_is_documented():
    doc = open("docs/staging-contract.md", encoding="utf-8").read()
    for column, limit in FIELD_LIMITS.items():
        assert f"| `{column}` | {limit} |" in doc


@pytest.mark.parametrize("raw, column, expected", [
    ("-1+1", "first_name_raw", "'-1 1"),
    ("=cmd|' /C calc'!A0", "street_raw", "'=cmd|' /C calc'!A0"),
    ("@SUM(A1:A9)", "city_raw", "'@sum(a1:a9)"),
])
def test_formula_text_is_neutralised(raw, column, expected):
    out = standardize_person_records(_records(last_name_raw="Smith", **{column: raw}), None, NOW).iloc[0]
    target = {"first_name_raw": "first_name", "street_raw": "street", "city_raw": "city"}[column]
    assert out[target] == expected and out["formula_fields"] == target


def test_formula_email_is_invalid_and_phones_keep_their_plus():
    out = standardize_person_records(_records(email_raw="=1+1@example.com", phone_raw="+44 20 7946 0958"), None, NOW)
    row = out.iloc[0]
    assert not row["email_valid"] and pd.isna(row["email_corrected"]) and row["email"] == "'=1+1@example.com"
    assert row["phone_e164"] == "+442079460958" and row["formula_fields"] == "email"
    assert standardize_person_records(_records(email_raw="o'brien+news@example.com"), None, NOW).iloc[0]["email_valid"]


def test_over_long_keys_are_quarantined_with_reason():
    """A key cannot be cut or nulled (it would join the wrong records): the row goes to quarantine."""
    edge = "K" * KEY_MAX_LENGTH
    cases = [
        (POS_LOYALTY, [loyalty_row(edge), loyalty_row(LONG_KEY)], "card_no", "3"),
        (POS_TRANSACTIONS, [transaction_row(edge), transaction_row(LONG_KEY)], "receipt_id", "3"),
        (CALL_CENTER, [contact_row(edge), contact_row(LONG_KEY)], "contact_id", "4"),  # notes span two lines
    ]
    for family, rows, key, ref in cases:
        result = parse_csv(csv_bytes(family.columns, rows), family)
        assert len(result.rows) == 1 and result.rows[0][family.columns.index(key)] == edge, family.name
        assert [r.record_ref for r in result.rejects] == [ref], family.name
        assert f"key field '{key}' is longer than {KEY_MAX_LENGTH} characters (9000)" in result.rejects[0].reason
    events = "\n".join([app_event("m1", user="u" * KEY_MAX_LENGTH), app_event("m2", user=LONG_KEY),
                         app_event("m" * 300), app_event("m4", anon=LONG_KEY)]).encode()
    result = parse_jsonl(events, gzipped=False)
    assert len(result.rows) == 1 and [r.reason for r in result.rejects] == [
        f"key 'userId' is longer than {KEY_MAX_LENGTH} characters",
        f"key 'messageId' is longer than {KEY_MAX_LENGTH} characters",
        f"key 'anonymousId' is longer than {KEY_MAX_LENGTH} characters",
    ]


# --- the whole pipeline, published to PostgreSQL ----------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_landing(tmp_path_factory):
    landing = tmp_path_factory.mktemp("bounded") / "landing"
    assert main(["sample", "--persons", "300", "--seed", "5", "--out", str(landing), "--as-of", "2026-11-01"]) == 0
    hostile = [
        loyalty_row("HUGE1", first=HUGE_FIRST, last="Smith", email="huge1@example.de"),
        loyalty_row("LONG1", first="Anna", last=LONG_LAST, email="long1@example.de"),
        loyalty_row("FORM1", first="=HYPERLINK(\"http://evil\",\"x\")", last="-1+1", email="=1+1@example.com"),
        loyalty_row("FORM2", first="@SUM(A1)", last="+cmd", email="form2@example.de"),
        loyalty_row("FUT01", first="Futura", last="Later", email="fut01@example.de", signed="2099-01-01T10:00:00"),
        loyalty_row(LONG_KEY, first="Keya", last="Long", email="longkey@example.de"),
    ]
    write(landing / "pos/loyalty_signups_S77_2026-10-30.csv", csv_bytes(POS_LOYALTY.columns, hostile))
    return landing


@pytest.mark.slow
@pytest.mark.postgres
def test_hostile_values_run_and_publish(tmp_path, monkeypatch, sample_landing, pg_url):
    wh = tmp_path / "w.duckdb"
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("CUSTOMER_PIPELINE_LANDING_DIR", str(sample_landing))
    monkeypatch.setenv("CUSTOMER_PIPELINE_WAREHOUSE", str(wh))
    monkeypatch.setenv("CUSTOMER_PIPELINE_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("SHOP_DB_URL", "")
    monkeypatch.setenv("CUSTOMER_PIPELINE_PG_URL", pg_url)
    assert main(["run"]) == 0

    with duckdb.connect(str(wh), read_only=True) as con:
        flags = dict(con.execute("""SELECT source_key, concat_ws('|', oversized_fields, formula_fields, future_dated_fields)
            FROM staging.person_records WHERE source_key IN ('card:HUGE1', 'card:LONG1', 'card:FORM1', 'card:FORM2',
            'card:FUT01')""").fetchall())
        golden = con.execute("SELECT * FROM gold.golden_customers").df()
        metrics = con.execute("SELECT source, metric, field, numerator FROM gold.data_quality_report_latest "
                              "WHERE metric IN ('oversized', 'formula_neutralised', 'future_dated') AND source = 'pos'").fetchall()
        freshness = con.execute("SELECT record_lag_seconds FROM gold.source_freshness WHERE source = 'pos'").fetchall()
    assert flags == {"card:HUGE1": "first_name", "card:LONG1": "last_name", "card:FORM1": "last_name,email",
                     "card:FORM2": "",  # `@SUM(A1)`, `+cmd`: the name standardiser already drops the signs
                     "card:FUT01": "record_created,record_updated,marketing_consent"}
    for column, limit in GOLD_TEXT_LIMITS.items():
        assert golden[column].dropna().str.len().max() <= limit, column
        assert not golden[column].dropna().str.startswith(FORMULA_START).any(), column
    assert golden["last_seen_at"].max() <= pd.Timestamp.now() + pd.Timedelta(days=1)
    assert freshness[0][0] >= 0
    found = {(m, f): n for _, m, f, n in metrics}
    assert found[("oversized", "first_name")] >= 1 and found[("oversized", "last_name")] >= 1
    assert found[("formula_neutralised", "last_name")] >= 1 and found[("future_dated", "record_created")] >= 1
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM quarantine.rejected_records WHERE reason LIKE "
                           "'key field ''card_no'' is longer than%'").fetchall()[0][0] == 1
        assert con.execute("SELECT max(length(source_key)) FROM gold.customer_xref").fetchall()[0][0] <= 200

    with contextlib.closing(pg.connect(pg_url)) as conn:
        longest = pg.scalar(conn, "SELECT max(greatest(length(first_name), length(last_name))) FROM gold.golden_customers")
        assert longest <= 100
        assert pg.scalar(conn, "SELECT count(*) FROM gold.golden_customers") == len(golden)
        assert pg.scalar(conn, "SELECT count(*) FROM gold.golden_customers WHERE last_name ~ '^[=+@-]'") == 0
