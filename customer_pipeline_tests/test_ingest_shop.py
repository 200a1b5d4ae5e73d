"""Incremental shop extraction by updated_at watermark, from SQLite and from the real PostgreSQL server."""

import secrets
import time

import dagster as dg
import pytest
import sqlalchemy as sa

from customer_pipeline import warehouse
from customer_pipeline.defs.resources import SourcesResource, WarehouseResource
from customer_pipeline.defs.sources.shop.assets import shop_database
from customer_pipeline.ingest.accounting import account_shop
from customer_pipeline.ingest.shop import SourceError, SourceUnavailable, extract_shop, sqlalchemy_url
from customer_pipeline_tests import pg
from customer_pipeline_tests.landing import SHOP_DDL, make_shop


def _rows(con, sql):
    return con.execute(sql).fetchall()


def _exercise_incremental(shop_url: str, engine: sa.Engine, con) -> None:
    first = extract_shop(con, shop_url, "run-1")
    assert first["customers"].rows_loaded == 2 and first["order_items"].rows_loaded == 2
    assert first["customers"].watermark_to.startswith("2026-10-02 10:00:00")
    assert _rows(con, "SELECT id, first_name, _location, _record_ref FROM raw.shop_customers ORDER BY id") == [
        ("1", "Anna", "shop:customers", "1"), ("2", "Bob", "shop:customers", "2"),
    ]
    # unchanged source: nothing changes (rows at the watermark are re-read but left alone)
    before = _rows(con, "SELECT * FROM raw.shop_customers ORDER BY id")
    second = extract_shop(con, shop_url, "run-2")
    assert sum(s.rows_loaded for s in second.values()) == 0
    assert _rows(con, "SELECT * FROM raw.shop_customers ORDER BY id") == before
    # a changed row is updated in place, a new row added, a new order's items follow it
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE customers SET first_name = 'Robert', updated_at = '2026-10-05 09:00:00' WHERE id = 2"))
        conn.execute(sa.text("INSERT INTO customers VALUES (3, 'c@x.de', 'Carl', 'Cole', NULL, NULL, NULL, false, "
                             "'2026-10-05 09:30:00', '2026-10-05 09:30:00', NULL)"))
        conn.execute(sa.text("UPDATE orders SET status = 'returned', updated_at = '2026-10-05 10:00:00' WHERE id = 1"))
        conn.execute(sa.text("UPDATE order_items SET qty = 3 WHERE order_id = 1"))
    third = extract_shop(con, shop_url, "run-3")
    assert third["customers"].rows_loaded == 2 and third["order_items"].rows_loaded == 1
    assert _rows(con, "SELECT id, first_name, _run_id FROM raw.shop_customers ORDER BY id") == [
        ("1", "Anna", "run-1"), ("2", "Robert", "run-3"), ("3", "Carl", "run-3"),
    ]
    assert _rows(con, "SELECT order_id, line_no, qty FROM raw.shop_order_items ORDER BY 1") == [("1", "1", "3"), ("2", "1", "1")]
    for table in ("customers", "addresses", "orders", "order_items", "email_events"):
        assert account_shop(con, table)["mismatches"] == []


def test_incremental_extract_from_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    engine = make_shop(url)
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        _exercise_incremental(url, engine, con)


@pytest.mark.postgres
def test_incremental_extract_from_postgresql(pg_url, tmp_path):
    engine = make_shop(pg_url)
    try:
        with warehouse.connect(tmp_path / "w.duckdb") as con:
            _exercise_incremental(pg_url, engine, con)
    finally:
        engine.dispose()


def test_row_of_wrong_type_is_quarantined_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    engine = make_shop(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO customers VALUES (7, 'z@x.de', 'Zed', 'Zulu', NULL, NULL, NULL, 0, "
                             "'2026-10-02 10:00:00', 'yesterday', NULL)"))
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        stats = extract_shop(con, url, "run-1")
        assert stats["customers"].rows_quarantined == 1 and stats["customers"].rows_loaded == 2
        extract_shop(con, url, "run-2")
        assert _rows(con, "SELECT location, record_ref, reason FROM quarantine.rejected_records") == [
            ("shop:customers", "7", "field 'updated_at' is not a timestamp: 'yesterday'")
        ]
        assert account_shop(con, "customers")["mismatches"] == []


def _error(tmp_path, url: str) -> SourceError:
    """The error extracting from `url` raises; its message is one line without credentials."""
    with warehouse.connect(tmp_path / "w.duckdb") as con, pytest.raises(SourceError) as error:
        extract_shop(con, url, "run-1")
    message = str(error.value)
    assert "\n" not in message and "secret" not in message
    return error.value


def test_unreachable_database_is_a_transient_error(tmp_path):
    error = _error(tmp_path, "postgresql://nobody:secret@127.0.0.1:1/none")
    assert isinstance(error, SourceUnavailable)
    assert str(error).startswith("shop database unreachable (127.0.0.1:1/none): ") and "refused" in str(error)


def test_bare_schemes_get_the_installed_drivers():
    assert sqlalchemy_url("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert sqlalchemy_url("mysql://u@h/db") == "mysql+pymysql://u@h/db"
    assert sqlalchemy_url("mariadb://u@h/db") == "mariadb+pymysql://u@h/db"
    for kept in ("mysql+pymysql://u@h/db", "postgresql+psycopg2://u@h/db", "sqlite:///x.sqlite", "not a url"):
        assert sqlalchemy_url(kept) == kept


def test_permanent_errors_are_not_retryable(tmp_path):
    """A wrong URL, a missing table or a missing column: retrying cannot help, so the error says so at once."""
    cases = {
        "not a url": "SHOP_DB_URL is not a database URL the pipeline can read (not a url): Could not parse",
        "foo://u:secret@h/db": "SHOP_DB_URL is not a database URL the pipeline can read (h/db): Can't load plugin",
        "postgresql://u:secret@h:port/db": "SHOP_DB_URL is not a database URL the pipeline can read (h:port/db): invalid",
        "mysql+mysqldb://u:secret@h/db": "SHOP_DB_URL is not a database URL the pipeline can read (h/db): No module named",
        f"sqlite:///{tmp_path / 'empty.sqlite'}": "shop database has no table 'customers'",
        f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.sqlite'}": "shop database cannot be read",
    }
    lacking = f"sqlite:///{tmp_path / 'lacking.sqlite'}"
    engine = sa.create_engine(lacking)
    with engine.begin() as conn:
        for ddl in SHOP_DDL:
            conn.execute(sa.text(ddl.replace(", deleted_at TIMESTAMP NULL", "")))
    engine.dispose()
    cases[lacking] = "shop table 'customers' lacks contract columns ['deleted_at']"
    for url, message in cases.items():
        error = _error(tmp_path, url)
        assert not isinstance(error, SourceUnavailable) and str(error).startswith(message), (url, str(error))


@pytest.mark.postgres
def test_unknown_database_and_role_on_postgresql_are_permanent(tmp_path):
    pg.require_pg()
    missing = f"cp_missing_{secrets.token_hex(6)}"
    for url, words in ((pg.url_for(missing), f'database "{missing}" does not exist'),
                       (pg.url_for("postgres", user=missing, password="secret"), f'role "{missing}" does not exist')):
        error = _error(tmp_path, url)
        assert not isinstance(error, SourceUnavailable) and "shop database cannot be read" in str(error)
        assert words in str(error)


def test_permanent_error_fails_the_asset_without_retries(tmp_path):
    """The retry policy (3 retries, 10 s with backoff) is for outages; a missing table fails the first time."""
    resources = {
        "warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
        "sources": SourcesResource(landing_dir=str(tmp_path), shop_db_url=f"sqlite:///{tmp_path / 'empty.sqlite'}"),
    }
    started = time.monotonic()
    result = dg.materialize([shop_database], resources=resources, raise_on_error=False)
    assert not result.success and time.monotonic() - started < 8
    kinds = [e.event_type_value for e in result.all_events]
    assert "STEP_UP_FOR_RETRY" not in kinds and kinds.count("STEP_FAILURE") == 1
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.event_specific_data.user_failure_data.description == "shop database has no table 'customers'"


def _shop_dump(con):
    out = {}
    for table in ("customers", "addresses", "orders", "order_items", "email_events"):
        out[table] = _rows(con, f"SELECT * EXCLUDE (_ingested_at, _run_id) FROM raw.shop_{table} ORDER BY ALL")
    out["quarantine"] = _rows(con, "SELECT * EXCLUDE (rejected_at, run_id) FROM quarantine.rejected_records ORDER BY ALL")
    out["watermarks"] = _rows(con, "SELECT source, table_name, watermark FROM meta.watermarks ORDER BY ALL")
    out["log"] = _rows(con, "SELECT * EXCLUDE (loaded_at, run_id) FROM meta.extract_log ORDER BY ALL")
    return out


def test_extract_in_worker_processes_and_in_chunks_equals_serial_extract(tmp_path, monkeypatch):
    from customer_pipeline.ingest import shop

    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    engine = make_shop(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO customers VALUES (7, 'z@x.de', 'Zed', 'Zulu', NULL, NULL, NULL, 0, "
                             "'2026-10-02 10:00:00', 'yesterday', NULL)"))
        for i in range(100, 160):
            conn.execute(sa.text(f"INSERT INTO customers VALUES ({i}, 'c{i}@x.de', 'C', 'D', NULL, NULL, NULL, 1, "
                                 f"'2026-10-01 08:00:00', '2026-10-0{i % 9 + 1} 08:00:00', NULL)"))
    engine.dispose()

    def run(db, workers, min_rows, chunk):
        monkeypatch.setenv("CUSTOMER_PIPELINE_WORKERS", workers)
        monkeypatch.setattr(shop, "PARALLEL_MIN_ROWS", min_rows)
        monkeypatch.setattr(shop, "_READ_CHUNK", chunk)
        with warehouse.connect(tmp_path / db) as con:
            stats = extract_shop(con, url, "run-1")
            again = extract_shop(con, url, "run-2")
            for table in shop.SHOP_TABLES:
                assert account_shop(con, table)["mismatches"] == []
            return stats, again, _shop_dump(con)

    serial = run("serial.duckdb", "0", 100_000, 100_000)
    # the pool re-imports the module, so the chunk size there is the default: chunking is tested in process
    pooled = run("pooled.duckdb", "2", 0, 100_000)
    chunked = run("chunked.duckdb", "0", 100_000, 7)
    assert pooled == serial and chunked == serial
    assert serial[0]["customers"].rows_quarantined == 1 and serial[0]["customers"].watermark_to.startswith("2026-10-09")
