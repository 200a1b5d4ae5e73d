"""The shop extract from the real MariaDB server (127.0.0.1:3306), by every URL form the contract promises."""

import contextlib
import os
import secrets
from collections.abc import Iterator

import pymysql
import pytest
import sqlalchemy as sa

from customer_pipeline import warehouse
from customer_pipeline.ingest.shop import SHOP_TABLES, SourceError, SourceUnavailable, extract_shop
from customer_pipeline_tests.landing import SHOP_DDL, make_shop
from customer_pipeline_tests.test_ingest_shop import _exercise_incremental

DEFAULT_TEST_MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/"
ENV_URL = "CUSTOMER_PIPELINE_TEST_MARIADB_URL"


def _base() -> sa.URL:
    return sa.make_url(os.environ.get(ENV_URL, "").strip() or DEFAULT_TEST_MARIADB_URL)


def _admin() -> "pymysql.Connection":
    u = _base()
    return pymysql.connect(host=u.host, port=u.port or 3306, user=u.username, password=u.password or "",
                           connect_timeout=5, autocommit=True)


def require_mariadb() -> None:
    """Fail under CI=true, skip elsewhere, when the server is not there (as pg.require_pg)."""
    try:
        with contextlib.closing(_admin()) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
        return
    except pymysql.Error as exc:
        error = str(exc)
    where = _base().render_as_string(hide_password=True)
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(f"MariaDB is required under CI=true but {where} is unreachable: {error}", pytrace=False)
    pytest.skip(f"MariaDB not reachable at {where} ({error}); start MariaDB on 127.0.0.1:3306 or set {ENV_URL}")


@contextlib.contextmanager
def temp_database(prefix: str = "cp_test") -> Iterator[str]:
    """A fresh database `<prefix>_<random>`; yields its mysql+pymysql URL and drops it afterwards."""
    require_mariadb()
    name = f"{prefix}_{secrets.token_hex(6)}"
    with contextlib.closing(_admin()) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield _base().set(database=name).render_as_string(hide_password=False)
    finally:
        with contextlib.closing(_admin()) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def mysql_ddl(ddl: str) -> str:
    # MySQL's TIMESTAMP ends in 2038 and a bare NUMERIC has no decimals: shop apps on MySQL use these
    return ddl.replace("TIMESTAMP", "DATETIME").replace("NUMERIC", "DECIMAL(12, 2)")


def make_mariadb_shop(url: str, scratch) -> sa.Engine:
    """The shop of landing.make_shop (same tables and rows) in the MariaDB database at `url`."""
    seed = make_shop(f"sqlite:///{scratch / 'seed.sqlite'}")
    engine = sa.create_engine(url)
    with seed.connect() as src, engine.begin() as dst:
        for ddl in SHOP_DDL:
            dst.execute(sa.text(mysql_ddl(ddl)))
        for name in SHOP_TABLES:
            rows = [dict(r) for r in src.execute(sa.text(f"SELECT * FROM {name}")).mappings()]
            if rows:
                dst.execute(sa.table(name, *[sa.column(c) for c in rows[0]]).insert(), rows)
    seed.dispose()
    return engine


@pytest.fixture
def mariadb_url(tmp_path):
    """URL (mysql+pymysql://) of a fresh database holding the small test shop; dropped afterwards."""
    with temp_database() as url:
        engine = make_mariadb_shop(url, tmp_path)
        try:
            yield url
        finally:
            engine.dispose()


@pytest.mark.parametrize("scheme", ["mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql"])
def test_incremental_extract_from_mariadb(mariadb_url, scheme, tmp_path):
    url = scheme + mariadb_url[len("mysql+pymysql"):]
    engine = sa.create_engine(mariadb_url)
    try:
        with warehouse.connect(tmp_path / "w.duckdb") as con:
            _exercise_incremental(url, engine, con)
            # values as the server delivers them, as text
            assert con.execute("SELECT marketing_opt_in, birth_date, created_at FROM raw.shop_customers "
                               "WHERE id = '1'").fetchall() == [("1", "1980-02-01", "2025-01-01 10:00:00")]
            assert con.execute("SELECT total FROM raw.shop_orders WHERE id = '1'").fetchall() == [("12.50",)]
    finally:
        engine.dispose()


def _error(tmp_path, url: str) -> SourceError:
    with warehouse.connect(tmp_path / "w.duckdb") as con, pytest.raises(SourceError) as error:
        extract_shop(con, url, "run-1")
    assert "\n" not in str(error.value) and "secret" not in str(error.value)
    return error.value


def test_permanent_errors_on_mariadb_fail_at_once(tmp_path):
    """Unknown database, refused credentials, missing table, missing column: not worth a retry."""
    base = _base()
    missing = f"cp_missing_{secrets.token_hex(6)}"
    with temp_database() as empty:
        with temp_database() as lacking:
            engine = sa.create_engine(lacking)
            with engine.begin() as conn:
                for ddl in SHOP_DDL:
                    conn.execute(sa.text(mysql_ddl(ddl).replace(", deleted_at DATETIME NULL", "")))
            engine.dispose()
            cases = {
                base.set(drivername="mysql", database=missing).render_as_string(hide_password=False):
                    f"Unknown database '{missing}'",
                base.set(drivername="mariadb", username=missing, password="secret").render_as_string(hide_password=False):
                    f"Access denied for user '{missing}'",
                empty: "shop database has no table 'customers'",
                lacking: "shop table 'customers' lacks contract columns ['deleted_at']",
            }
            for url, words in cases.items():
                error = _error(tmp_path, url)
                assert not isinstance(error, SourceUnavailable) and words in str(error), (url, str(error))


def test_refused_connection_to_mariadb_is_transient(tmp_path):
    error = _error(tmp_path, "mysql://root:secret@127.0.0.1:1/shop")
    assert isinstance(error, SourceUnavailable)
    assert str(error).startswith("shop database unreachable (127.0.0.1:1/shop): ") and "refused" in str(error)
