"""The shop watermark (issue 11): compared as timestamps, never past the present, with an overlap window.

Every case runs against SQLite, the real PostgreSQL server and the real MariaDB server."""

import datetime as dt

import dagster as dg
import pytest
import sqlalchemy as sa

from customer_pipeline import warehouse
from customer_pipeline.defs.resources import SourcesResource, WarehouseResource
from customer_pipeline.defs.sources.shop.assets import shop_database
from customer_pipeline.defs.sources.shop.checks import NO_ROWS_DATED_IN_FUTURE, shop_rows_dated_in_future
from customer_pipeline.ingest.accounting import account_shop
from customer_pipeline.ingest.shop import extract_shop, rows_dated_in_future
from customer_pipeline_tests import pg
from customer_pipeline_tests.landing import make_shop
from customer_pipeline_tests.test_shop_mariadb import make_mariadb_shop, temp_database

# the extracts run "now" on 2026-10-10 noon (UTC); the test shop's rows are dated 2026-10-01 and -02
NOW = dt.datetime(2026, 10, 10, 12, 0)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "mariadb"])
def shop(request, tmp_path):
    """(url, engine) of landing.make_shop's small shop on each backend, in a database of its own."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
        engine = make_shop(url)
        yield url, engine
        engine.dispose()
        return
    if request.param == "postgresql":
        pg.require_pg()
        databases, make = pg.temp_database(), make_shop
    else:
        databases, make = temp_database(), lambda url: make_mariadb_shop(url, tmp_path)
    with databases as url:
        engine = make(url)
        try:
            yield url, engine
        finally:
            engine.dispose()


def _execute(engine: sa.Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def _rows(con, sql):
    return con.execute(sql).fetchall()


def _accounted(con) -> None:
    for table in ("customers", "addresses", "orders", "order_items", "email_events"):
        assert account_shop(con, table)["mismatches"] == []


NEW_CUSTOMER = ("INSERT INTO customers VALUES (3, 'c@x.de', 'Carl', 'Cole', NULL, NULL, NULL, false, "
                "'{at}', '{at}', NULL)")


def test_row_dated_in_the_future_does_not_stop_later_changes(shop, tmp_path):
    url, engine = shop
    _execute(engine, "UPDATE customers SET updated_at = '2099-01-01 00:00:00' WHERE id = 1")
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        first = extract_shop(con, url, "run-1", now=NOW)
        _execute(engine, "UPDATE customers SET email = 'bob@new.example', updated_at = '2026-10-10 12:30:00' WHERE id = 2",
                 NEW_CUSTOMER.format(at="2026-10-10 12:45:00"))
        second = extract_shop(con, url, "run-2", now=NOW + dt.timedelta(hours=1))
        # the change and the new customer are read; the future row is kept, unchanged
        assert _rows(con, "SELECT id, email, updated_at, _run_id FROM raw.shop_customers ORDER BY id") == [
            ("1", "anna@example.de", "2099-01-01 00:00:00", "run-1"),
            ("2", "bob@new.example", "2026-10-10 12:30:00", "run-2"),
            ("3", "c@x.de", "2026-10-10 12:45:00", "run-2"),
        ]
        # the future row is loaded but does not move the watermark; read again each run, left alone
        assert first["customers"].rows_loaded == 2 and first["customers"].watermark_to == "2026-10-02 10:00:00"
        assert first["customers"].rows_in_future == 1 and second["customers"].rows_in_future == 1
        assert rows_dated_in_future(con, "customers", NOW) == ["1"]
        assert (second["customers"].rows_read, second["customers"].rows_loaded, second["customers"].rows_unchanged) == (3, 2, 1)
        assert second["customers"].watermark_to == "2026-10-10 12:45:00"
        _accounted(con)


def test_mixed_separators_compare_as_timestamps(shop, tmp_path):
    url, engine = shop
    # the shop application wrote one row with a 'T' and one with a space
    _execute(engine, "UPDATE customers SET updated_at = '2026-10-03T10:00:00' WHERE id = 1")
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        first = extract_shop(con, url, "run-1", now=NOW)
        assert first["customers"].watermark_to == "2026-10-03 10:00:00"  # one normalised form
        _execute(engine, "UPDATE customers SET email = 'bob@new.example', updated_at = '2026-10-03 11:00:00' WHERE id = 2",
                 NEW_CUSTOMER.format(at="2026-10-03T11:30:00"))
        second = extract_shop(con, url, "run-2", now=NOW)
        assert _rows(con, "SELECT id, email FROM raw.shop_customers ORDER BY id") == [
            ("1", "anna@example.de"), ("2", "bob@new.example"), ("3", "c@x.de"),
        ]
        assert second["customers"].rows_loaded == 2 and second["customers"].watermark_to == "2026-10-03 11:30:00"
        _accounted(con)


def test_overlap_window_reads_rows_committed_late_without_duplicating(shop, tmp_path):
    url, engine = shop
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        first = extract_shop(con, url, "run-1", now=NOW)
        assert first["customers"].watermark_to == "2026-10-02 10:00:00"
        # a transaction that stamped its row at 09:58 committed after the first extract had read 10:00
        _execute(engine, NEW_CUSTOMER.format(at="2026-10-02 09:58:00"),
                 "UPDATE orders SET status = 'returned', updated_at = '2026-10-02 10:59:00' WHERE id = 2",
                 "UPDATE order_items SET qty = 2 WHERE order_id = 2")
        second = extract_shop(con, url, "run-2", now=NOW)
        # read: the late row and the last minutes (Bob, 10:00) again, not the older Anna (2026-10-01)
        assert (second["customers"].rows_read, second["customers"].rows_loaded, second["customers"].rows_unchanged) == (2, 1, 1)
        assert second["customers"].watermark_to == "2026-10-02 10:00:00"  # not moved back
        assert second["order_items"].rows_loaded == 1
        before = _rows(con, "SELECT * FROM raw.shop_customers ORDER BY id")
        assert [(r[0], r[2]) for r in before] == [("1", "Anna"), ("2", "Bob"), ("3", "Carl")]
        # re-reading the window again changes nothing and duplicates nothing
        third = extract_shop(con, url, "run-3", now=NOW)
        assert sum(s.rows_loaded for s in third.values()) == 0
        assert _rows(con, "SELECT * FROM raw.shop_customers ORDER BY id") == before
        assert _rows(con, "SELECT order_id, line_no, qty FROM raw.shop_order_items ORDER BY 1") == [("1", "1", "1"), ("2", "1", "2")]
        _accounted(con)


def test_watermark_left_in_the_future_by_an_earlier_version_is_dropped(shop, tmp_path):
    url, engine = shop
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        extract_shop(con, url, "run-1", now=NOW)
        con.execute("UPDATE meta.watermarks SET watermark = '2099-01-01 00:00:00' WHERE table_name = 'customers'")
        _execute(engine, "UPDATE customers SET email = 'bob@new.example', updated_at = '2026-10-10 11:00:00' WHERE id = 2")
        second = extract_shop(con, url, "run-2", now=NOW)
        # read whole once (Anna unchanged, Bob changed), then from the present on
        assert (second["customers"].watermark_from, second["customers"].watermark_to) == (None, "2026-10-10 11:00:00")
        assert (second["customers"].rows_read, second["customers"].rows_loaded) == (2, 1)
        assert _rows(con, "SELECT email FROM raw.shop_customers WHERE id = '2'") == [("bob@new.example",)]
        _accounted(con)


def test_watermark_never_passes_the_present(tmp_path):
    """A row a few hours ahead (within the tolerance: a clock running fast) is not flagged, but the watermark
    stops at now, so a row stamped between now and then by a correct clock is still read."""
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    engine = make_shop(url)
    _execute(engine, "UPDATE customers SET updated_at = '2026-10-10 15:00:00' WHERE id = 1")
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        first = extract_shop(con, url, "run-1", now=NOW)
        assert first["customers"].watermark_to == "2026-10-10 12:00:00" and first["customers"].rows_in_future == 0
        _execute(engine, "UPDATE customers SET email = 'bob@new.example', updated_at = '2026-10-10 12:20:00' WHERE id = 2")
        second = extract_shop(con, url, "run-2", now=NOW + dt.timedelta(minutes=30))
        assert second["customers"].watermark_to == "2026-10-10 12:30:00" and second["customers"].rows_loaded == 1
        assert rows_dated_in_future(con, "customers", NOW) == []


def test_sqlite_offsets_compare_in_utc(tmp_path):
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    engine = make_shop(url)
    _execute(engine, "UPDATE customers SET updated_at = '2026-10-03T14:00:00+02:00' WHERE id = 1")
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        assert extract_shop(con, url, "run-1", now=NOW)["customers"].watermark_to == "2026-10-03 12:00:00"
        _execute(engine, "UPDATE customers SET email = 'bob@new.example', updated_at = '2026-10-03 12:30:00' WHERE id = 2")
        second = extract_shop(con, url, "run-2", now=NOW)
        assert second["customers"].rows_loaded == 1 and second["customers"].watermark_to == "2026-10-03 12:30:00"


def test_future_rows_are_a_warning_naming_their_keys(tmp_path):
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    engine = make_shop(url)
    _execute(engine, "UPDATE customers SET updated_at = '2099-01-01 00:00:00' WHERE id = 1",
             "UPDATE email_events SET occurred_at = '2099-01-01T08:00:00' WHERE id = 1")
    resources = {
        "warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
        "sources": SourcesResource(landing_dir=str(tmp_path), shop_db_url=url),
    }
    result = dg.materialize([shop_database, shop_rows_dated_in_future], resources=resources)
    assert result.success  # a warning, not a failure: the rows are loaded
    checks = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"raw/shop_customers", "raw/shop_addresses", "raw/shop_orders", "raw/shop_email_events"}
    assert all(e.check_name == NO_ROWS_DATED_IN_FUTURE and e.severity == dg.AssetCheckSeverity.WARN
               for e in checks.values())
    failed = {k: (e.metadata["rows"].value, e.metadata["keys"].value) for k, e in checks.items() if not e.passed}
    assert failed == {"raw/shop_customers": (1, "1"), "raw/shop_email_events": (1, "1")}
    assert "anna" not in str(checks["raw/shop_customers"].metadata).lower()  # keys only, no personal data
    mats = {m.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    assert mats["raw/shop_customers"]["rows_in_future"].value == 1 and mats["raw/shop_customers"]["dagster/row_count"].value == 2
