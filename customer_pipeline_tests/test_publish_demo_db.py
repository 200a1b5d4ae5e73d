"""`make demo` publishes to a local PostgreSQL when one answers: the demo database helper, for real."""

import contextlib
import dataclasses
import secrets
import socket

import pytest

from customer_pipeline.publish import demo_db
from customer_pipeline_tests import pg

pytestmark = pytest.mark.postgres


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_creates_the_demo_database_once_and_reports_it(capsys):
    pg.require_pg()
    name = f"cp_test_demo_{secrets.token_hex(4)}"
    url = pg.url_for(name)
    try:
        assert demo_db.main([url]) == 0
        assert pg.scalar(pg.base_url(), "SELECT count(*) FROM pg_database WHERE datname = %s", [name]) == 1
        assert demo_db.main([url]) == 0  # already there: nothing to do, still usable
        assert "will also be published to PostgreSQL" in capsys.readouterr().out
        assert pg.scalar(url, "SELECT current_database()") == name
    finally:
        with contextlib.closing(pg.connect(pg.base_url())) as conn, conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_no_server_means_one_line_and_duckdb_only(capsys):
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{_free_port()}/customer_demo"
    assert demo_db.main([url]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("PostgreSQL not used for the demo") and "stays in DuckDB" in out[0]


def test_a_url_without_a_database_is_refused(capsys):
    assert demo_db.main(["postgresql+psycopg2://postgres@127.0.0.1:5432"]) == 1
    assert "no database named" in capsys.readouterr().out


def test_run_summary_reads_back_what_postgres_serves(pg_url):
    from customer_pipeline.cli import _published_lines
    from customer_pipeline.settings import Settings

    with contextlib.closing(pg.connect(pg_url)) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA gold; CREATE TABLE gold.golden_customers AS SELECT g AS customer_id "
                    "FROM generate_series(1, 7) AS g")
    settings = Settings.from_env()
    lines = _published_lines(dataclasses.replace(settings, pg_url=pg_url))
    assert lines[1].startswith("PostgreSQL (") and "password" not in lines[1]
    assert [line.split() for line in lines[2:]] == [["gold.golden_customers", "7"]]
    off = _published_lines(dataclasses.replace(settings, pg_url=None))
    assert off[-1] == "PostgreSQL: publishing is off (set CUSTOMER_PIPELINE_PG_URL)"
