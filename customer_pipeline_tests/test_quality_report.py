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


# --- retention in the warehouse, a bounded trend for PostgreSQL ---------------------------------------------------


def _old_runs(path, ages_days: list[float], now: dt.datetime) -> list[str]:
    """Report runs measured `ages_days` before `now` (the real report's rows, re-dated), appended to the history."""
    frame, _ = report.build_report(_people(), REJECTED, RAW_COUNTS, now=NOW, run_id="x")
    ids = []
    with wh.connect(path) as con:
        for i, age in enumerate(ages_days):
            run = frame.assign(run_id=f"old-{i}", measured_at=now - dt.timedelta(days=age))
            report.write_report(con, run)  # no retention: every run is kept
            ids.append(f"old-{i}")
    return ids


def test_runs_older_than_the_retention_are_deleted_on_the_next_run(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    _seed(path)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    old = _old_runs(path, [400, 31, 29, 1], now)
    monkeypatch.setenv("CUSTOMER_PIPELINE_QUALITY_RETENTION_DAYS", "30")
    result = dg.materialize([data_quality_report], resources={"warehouse": WarehouseResource(path=str(path))})
    assert result.success
    with wh.connect(path, read_only=True) as con:
        runs = {r[0] for r in con.execute("SELECT DISTINCT run_id FROM gold.data_quality_report").fetchall()}
        latest = con.execute("SELECT DISTINCT run_id FROM gold.data_quality_report_latest").fetchall()
    assert runs == {old[2], old[3], result.run_id}  # 400 and 31 days old: gone; 29 and 1 day old: kept
    assert latest == [(result.run_id,)]
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["runs_removed_by_retention"].value == 2 and meta["retention_days"].value == 30
    assert meta["runs_in_history"].value == 3
    with wh.connect(path, read_only=True) as con:
        first = (now - dt.timedelta(days=29)).date()
        assert report.history_line(con, 30, 5) == [
            f"History: 3 run(s) kept since {first} (runs older than 30 days are deleted; "
            "CUSTOMER_PIPELINE_QUALITY_RETENTION_DAYS); PostgreSQL gets the newest run of each of the last 5 days"]
        assert report.history_line(con, 30, None)[0].endswith("CUSTOMER_PIPELINE_QUALITY_RETENTION_DAYS)")


def test_retention_defaults_to_90_days_and_refuses_nonsense(monkeypatch):
    from customer_pipeline.settings import DEFAULT_QUALITY_RETENTION_DAYS, Settings

    monkeypatch.delenv("CUSTOMER_PIPELINE_QUALITY_RETENTION_DAYS", raising=False)
    monkeypatch.setenv("CUSTOMER_PIPELINE_QUALITY_TREND_DAYS", "")  # empty counts as unset
    s = Settings.from_env()
    assert s.quality_retention_days == DEFAULT_QUALITY_RETENTION_DAYS == 90 and s.quality_trend_days == 30
    for bad in ("0", "-3", "a week", "1.5"):
        monkeypatch.setenv("CUSTOMER_PIPELINE_QUALITY_RETENTION_DAYS", bad)
        with pytest.raises(ValueError, match="CUSTOMER_PIPELINE_QUALITY_RETENTION_DAYS"):
            Settings.from_env()


def _history(days: int, per_day: int, end: dt.datetime) -> pd.DataFrame:
    """`per_day` runs a day over `days` days up to `end`, three metric rows each."""
    rows = []
    for d in range(days):
        for k in range(per_day):
            at = end - dt.timedelta(days=d, hours=6 * k)
            rows += [{"run_id": f"r{d}-{k}", "measured_at": at, "source": s, "metric": "records", "field": None,
                      "value": 1.0, "numerator": 1, "denominator": None} for s in ("pos", "shop", "all")]
    return pd.DataFrame(rows, columns=list(report.COLUMNS))


def test_trend_keeps_the_newest_run_of_each_recent_day():
    end = dt.datetime(2026, 11, 20, 20, 0)
    history = _history(days=40, per_day=3, end=end)  # runs at 20:00, 14:00, 08:00 each day
    kept = report.trend(history, days=7)
    runs = kept.groupby("run_id")["measured_at"].min().sort_values()
    assert len(runs) == 7 and runs.max() == end
    assert [t.hour for t in runs] == [20] * 7 and runs.min() == end - dt.timedelta(days=6)
    assert len(kept) == 7 * 3
    assert report.trend(history.iloc[0:0], days=7).empty


@pytest.mark.postgres
def test_postgres_receives_the_latest_run_and_a_bounded_trend(tmp_path, pg_url, bi_role, monkeypatch):
    import contextlib

    from customer_pipeline.defs.publish.assets import PostgresPublishResource, postgres_gold
    from customer_pipeline_tests import pg

    path = tmp_path / "w.duckdb"
    end = dt.datetime(2026, 11, 20, 20, 0)
    with wh.connect(path) as con:
        wh.replace_table(con, "gold.data_quality_report", _history(days=40, per_day=3, end=end))
    monkeypatch.setenv("CUSTOMER_PIPELINE_QUALITY_TREND_DAYS", "5")
    result = dg.materialize([postgres_gold], resources={
        "warehouse": WarehouseResource(path=str(path)),
        "postgres_publish": PostgresPublishResource(pg_url=pg_url, bi_role=bi_role)})
    assert result.success
    with contextlib.closing(pg.connect(pg_url)) as conn:
        runs = pg.rows(conn, "SELECT run_id, min(measured_at) FROM gold.data_quality_report GROUP BY 1 ORDER BY 2")
        latest = pg.rows(conn, "SELECT DISTINCT run_id FROM gold.data_quality_report_latest")
        rows = pg.scalar(conn, "SELECT count(*) FROM gold.data_quality_report")
    assert [r[0] for r in runs] == ["r4-0", "r3-0", "r2-0", "r1-0", "r0-0"] and rows == 5 * 3
    assert latest == [("r0-0",)]
    # the BI role reads the view as it reads the tables (the test's superuser may take any role)
    with contextlib.closing(pg.connect(pg_url)) as conn, conn.cursor() as cur:
        cur.execute(f"SET ROLE {bi_role}")
        cur.execute("SELECT count(*) FROM gold.data_quality_report_latest")
        assert cur.fetchone() == (3,)
    # a second publish swaps table and view again (the view must not block dropping the table)
    monkeypatch.setenv("CUSTOMER_PIPELINE_QUALITY_TREND_DAYS", "2")
    assert dg.materialize([postgres_gold], resources={
        "warehouse": WarehouseResource(path=str(path)),
        "postgres_publish": PostgresPublishResource(pg_url=pg_url, bi_role=bi_role)}).success
    assert pg.scalar(pg_url, "SELECT count(DISTINCT run_id) FROM gold.data_quality_report") == 2
    assert pg.scalar(pg_url, "SELECT count(*) FROM gold.data_quality_report_latest") == 3
