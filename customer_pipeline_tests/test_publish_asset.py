"""The `publish/postgres_gold` asset: gold tables from a temporary DuckDB warehouse into a real PostgreSQL."""

import contextlib
import datetime as dt

import dagster as dg
import pytest

from customer_pipeline import freshness, warehouse
from customer_pipeline.defs.publish.assets import PostgresPublishResource, postgres_gold, publish_resource_from_env
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline_tests import pg

KEY = dg.AssetKey(["publish", "postgres_gold"])


def _gold_warehouse(path, skip=()) -> dict:
    """Small gold tables of the pipeline's shape; source_freshness is the real one (interval columns)."""
    tables = pg.synthetic_gold(40, seed=3)
    now = dt.datetime(2026, 1, 1, 6)
    sla = freshness.Sla(warn=dt.timedelta(hours=2), fail=dt.timedelta(hours=3))
    tables["source_freshness"] = freshness.frame([
        freshness.SourceFreshness("shop", now - dt.timedelta(hours=1), now - dt.timedelta(hours=5), sla, now),
        freshness.SourceFreshness("app", None, None, sla, now),
    ])
    tables = {name: df for name, df in tables.items() if name not in skip}
    with warehouse.connect(path) as con:
        for name, df in tables.items():
            warehouse.replace_table(con, f"gold.{name}", df)
    return tables


def _materialize(tmp_path, target: PostgresPublishResource) -> dg.AssetMaterialization:
    result = dg.materialize(
        [postgres_gold],
        resources={"warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")), "postgres_publish": target},
    )
    assert result.success
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == KEY]
    return event.materialization


@pytest.mark.postgres
def test_publishes_every_gold_table_readable_by_bi(tmp_path, pg_url, bi_role):
    tables = _gold_warehouse(tmp_path / "w.duckdb")
    mat = _materialize(tmp_path, PostgresPublishResource(pg_url=pg_url, bi_role=bi_role))
    assert mat.metadata["published"].value is True
    assert mat.metadata["not_in_warehouse"].value == "none"
    assert "gold.golden_customers | 40 |" in mat.metadata["tables"].value
    assert mat.metadata["target"].value.endswith("/" + pg_url.rsplit("/", 1)[-1])
    with contextlib.closing(pg.connect(pg_url)) as conn:
        for name, df in tables.items():
            assert pg.scalar(conn, f"SELECT count(*) FROM gold.{name}") == len(df), name
            assert pg.scalar(conn, "SELECT has_table_privilege(%s, %s, 'SELECT')", [bi_role, f"gold.{name}"])
        assert pg.scalar(conn, "SELECT data_type FROM information_schema.columns WHERE table_schema = 'gold' "
                               "AND table_name = 'source_freshness' AND column_name = 'sla_fail'") == "interval"
        assert pg.rows(conn, "SELECT source, status, lag FROM gold.source_freshness ORDER BY source") == [
            ("app", "never_loaded", None), ("shop", "fresh", dt.timedelta(hours=1))]


@pytest.mark.postgres
def test_publishes_the_gold_tables_that_exist(tmp_path, pg_url, bi_role):
    _gold_warehouse(tmp_path / "w.duckdb", skip=("customer_id_history", "data_quality_report"))
    mat = _materialize(tmp_path, PostgresPublishResource(pg_url=pg_url, bi_role=bi_role))
    assert mat.metadata["not_in_warehouse"].value == "customer_id_history, data_quality_report"
    with contextlib.closing(pg.connect(pg_url)) as conn:
        assert {r[0] for r in pg.rows(conn, "SELECT table_name FROM information_schema.tables "
                                             "WHERE table_schema = 'gold'")} == {
            "golden_customers", "customer_xref", "households", "household_id_history", "source_freshness"}


def test_without_a_postgres_url_publishing_is_off_and_the_run_succeeds(tmp_path):
    _gold_warehouse(tmp_path / "w.duckdb")
    mat = _materialize(tmp_path, PostgresPublishResource(pg_url=None))
    assert mat.metadata["published"].value is False
    assert "CUSTOMER_PIPELINE_PG_URL is not set" in mat.metadata["reason"].value


def test_resource_reads_the_url_through_an_env_var(monkeypatch):
    monkeypatch.setenv("CUSTOMER_PIPELINE_PG_URL", "")
    assert publish_resource_from_env().pg_url is None
    monkeypatch.setenv("CUSTOMER_PIPELINE_PG_URL", "postgresql+psycopg2://u:secret@db:5432/x")
    monkeypatch.setenv("CUSTOMER_PIPELINE_BI_ROLE", "bi_team")
    resource = publish_resource_from_env()
    # the definition holds the variable's name (shown in the UI), the value is read when a run starts
    assert isinstance(resource.pg_url, dg.EnvVar) and resource.pg_url.env_var_name == "CUSTOMER_PIPELINE_PG_URL"
    assert resource.bi_role == "bi_team"
