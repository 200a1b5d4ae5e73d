"""The `publish/postgres_gold` asset: gold tables from a temporary DuckDB warehouse into a real PostgreSQL."""

import contextlib
import datetime as dt

import dagster as dg
import pytest

from customer_pipeline import freshness, warehouse
from customer_pipeline.defs.automation import sensors
from customer_pipeline.defs.publish.assets import (
    GOLD_TABLES,
    PostgresPublishResource,
    postgres_gold,
    publish_resource_from_env,
)
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.definitions import defs as load_defs
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


def _run(tmp_path, target: PostgresPublishResource) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [postgres_gold], raise_on_error=False,
        resources={"warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")), "postgres_publish": target},
    )


def _materialize(tmp_path, target: PostgresPublishResource) -> dg.AssetMaterialization:
    result = _run(tmp_path, target)
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
            "golden_customers", "customer_xref", "households", "household_id_history", "source_freshness",
            "customer_purchases", "customer_rfm", "market_basket", "customer_recommendations", "customer_churn",
            "marketing_audience", "customer_demographics"}


def test_without_a_postgres_url_the_code_location_has_no_publish_asset(monkeypatch):
    # nothing to publish to: no asset that could show "Materialized" while PostgreSQL falls behind (issue 12)
    monkeypatch.setenv("CUSTOMER_PIPELINE_PG_URL", "")
    defs = load_defs()
    graph = defs.resolve_asset_graph()
    assert KEY not in graph.get_all_asset_keys()
    assert {dg.AssetKey(["gold", name]) for name in GOLD_TABLES} <= graph.get_all_asset_keys()
    assert KEY not in defs.resolve_job_def("materialize_all").asset_layer.selected_asset_keys
    assert KEY not in sensors.DOWNSTREAM.resolve(graph)


def test_with_a_postgres_url_the_asset_is_built_by_every_run_and_the_automation(monkeypatch):
    monkeypatch.setenv("CUSTOMER_PIPELINE_PG_URL", "postgresql+psycopg2://u:secret@db:5432/x")
    defs = load_defs()
    graph = defs.resolve_asset_graph()
    assert KEY in graph.get_all_asset_keys()
    assert KEY in defs.resolve_job_def("materialize_all").asset_layer.selected_asset_keys
    assert KEY in sensors.DOWNSTREAM.resolve(graph)
    assert set(graph.get(KEY).parent_keys) == {dg.AssetKey(["gold", name]) for name in GOLD_TABLES}


def _failure(result) -> str:
    [failure] = result.get_step_failure_events()
    return failure.step_failure_data.error.message


def test_without_a_url_at_run_time_the_asset_fails_and_records_no_materialization(tmp_path):
    _gold_warehouse(tmp_path / "w.duckdb")
    result = _run(tmp_path, PostgresPublishResource(pg_url=None))
    assert not result.success and result.get_asset_materialization_events() == []
    assert "CUSTOMER_PIPELINE_PG_URL is not set" in _failure(result)


@pytest.mark.postgres
def test_a_warehouse_without_gold_fails_instead_of_publishing_nothing(tmp_path, pg_url, bi_role):
    with warehouse.connect(tmp_path / "w.duckdb"):
        pass
    result = _run(tmp_path, PostgresPublishResource(pg_url=pg_url, bi_role=bi_role))
    assert not result.success and result.get_asset_materialization_events() == []
    assert "no gold table in the warehouse" in _failure(result)
    assert pg.scalar(pg_url, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'gold'") == 0


def test_resource_reads_the_url_through_an_env_var(monkeypatch):
    monkeypatch.setenv("CUSTOMER_PIPELINE_PG_URL", "")
    assert publish_resource_from_env().pg_url is None
    monkeypatch.setenv("CUSTOMER_PIPELINE_PG_URL", "postgresql+psycopg2://u:secret@db:5432/x")
    monkeypatch.setenv("CUSTOMER_PIPELINE_BI_ROLE", "bi_team")
    resource = publish_resource_from_env()
    # the definition holds the variable's name (shown in the UI), the value is read when a run starts
    assert isinstance(resource.pg_url, dg.EnvVar) and resource.pg_url.env_var_name == "CUSTOMER_PIPELINE_PG_URL"
    assert resource.bi_role == "bi_team"
