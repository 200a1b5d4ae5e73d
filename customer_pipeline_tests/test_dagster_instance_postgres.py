"""The shipped Dagster instance configs: they validate, and the production one really runs on dagster-postgres."""

import contextlib
import shutil
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.instance.config import dagster_instance_config
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._utils.tags import TagConcurrencyLimitsCounter

from customer_pipeline_tests import pg

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_YAML = ROOT / "deploy" / "dagster.yaml"
EMBEDDED_YAML = ROOT / "dagster_home" / "dagster.yaml"
WAREHOUSE_LIMIT = {"key": "warehouse", "value": "duckdb", "limit": 1}


def _point_dagster_pg_env_at(monkeypatch, url: str) -> None:
    u = sa.make_url(url)
    monkeypatch.setenv("DAGSTER_PG_USERNAME", u.username or "")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", u.password or "")
    monkeypatch.setenv("DAGSTER_PG_HOST", u.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(u.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_DB", u.database or "")


def _home_with(tmp_path: Path, yaml_file: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(yaml_file, home / "dagster.yaml")
    return home


def _assert_run_queue_limits(instance: dg.DagsterInstance) -> None:
    assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
    config = instance.get_concurrency_config()
    assert WAREHOUSE_LIMIT in list(config.run_queue_config.tag_concurrency_limits)
    assert config.run_queue_config.max_concurrent_runs == 1


@pytest.mark.parametrize("yaml_file", [PRODUCTION_YAML, EMBEDDED_YAML], ids=["production", "embedded"])
def test_shipped_instance_yaml_validates_against_dagsters_schema(yaml_file, tmp_path, monkeypatch):
    _point_dagster_pg_env_at(monkeypatch, "postgresql+psycopg2://dagster:pw@db.invalid:5433/dagster")
    config, custom_class = dagster_instance_config(str(_home_with(tmp_path, yaml_file)))
    assert custom_class is None
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert WAREHOUSE_LIMIT in config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 1
    if yaml_file == PRODUCTION_YAML:
        pg_db = config["storage"]["postgres"]["postgres_db"]
        assert pg_db["scheme"] == "postgresql+psycopg2"
        assert {"username", "password", "hostname", "port", "db_name"} <= set(pg_db)
    else:
        assert "storage" not in config  # SQLite under DAGSTER_HOME


def test_embedded_instance_keeps_sqlite_storage_under_dagster_home(tmp_path):
    home = _home_with(tmp_path, EMBEDDED_YAML)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert Path(instance.root_directory) == home
        _assert_run_queue_limits(instance)


def test_production_instance_refuses_to_start_without_its_credentials(tmp_path, monkeypatch):
    for name in ("DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(dg.DagsterInvalidConfigError, match="DAGSTER_PG_"):
        dg.DagsterInstance.from_config(str(_home_with(tmp_path, PRODUCTION_YAML)))


@dg.asset(key=["test", "tiny_customers"], pool="duckdb_warehouse")
def tiny_customers() -> dg.MaterializeResult:
    """A stand-in asset: writes nothing, reports a row count."""
    return dg.MaterializeResult(metadata={"dagster/row_count": 3})


@pytest.mark.postgres
def test_materialisation_runs_on_the_shipped_postgres_instance(pg_url, tmp_path, monkeypatch):
    _point_dagster_pg_env_at(monkeypatch, pg_url)
    home = _home_with(tmp_path, PRODUCTION_YAML)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        _assert_run_queue_limits(instance)

        result = dg.materialize([tiny_customers], instance=instance, tags={"warehouse": "duckdb"})
        assert result.success

        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS
        assert run.tags["warehouse"] == "duckdb"
        event = instance.get_latest_materialization_event(dg.AssetKey(["test", "tiny_customers"]))
        assert event is not None and event.run_id == result.run_id
        assert event.asset_materialization.metadata["dagster/row_count"].value == 3

    # It is really in the test database, not in a SQLite file under the temporary DAGSTER_HOME.
    with contextlib.closing(pg.connect(pg_url)) as conn:
        assert pg.scalar(conn, "SELECT status FROM runs WHERE run_id = %s", [result.run_id]) == "SUCCESS"
        assert pg.scalar(conn, "SELECT count(*) FROM event_logs WHERE run_id = %s"
                               " AND dagster_event_type = 'ASSET_MATERIALIZATION'", [result.run_id]) == 1
    assert not list(home.rglob("*.db"))


@pytest.mark.postgres
def test_run_queue_limits_block_a_second_warehouse_run(pg_url, tmp_path, monkeypatch):
    """The queue daemon's tag counter, fed the instance's limits and in-progress runs, holds a second warehouse run.

    (Runs are created directly: a truly QUEUED run needs a code location origin, i.e. a running workspace.)
    """
    _point_dagster_pg_env_at(monkeypatch, pg_url)
    job = dg.define_asset_job("tiny_job", selection=[tiny_customers])
    defs = dg.Definitions(assets=[tiny_customers], jobs=[job])
    with dg.DagsterInstance.from_config(str(_home_with(tmp_path, PRODUCTION_YAML))) as instance:
        job_def = defs.resolve_job_def("tiny_job")
        started = instance.create_run_for_job(job_def, tags={"warehouse": "duckdb"}, status=DagsterRunStatus.STARTED)
        waiting = instance.create_run_for_job(job_def, tags={"warehouse": "duckdb"})
        other = instance.create_run_for_job(job_def, tags={"warehouse": "none"})

        in_progress = list(instance.get_runs(dg.RunsFilter(statuses=[DagsterRunStatus.STARTED])))
        assert [r.run_id for r in in_progress] == [started.run_id]
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        counter = TagConcurrencyLimitsCounter(list(limits), in_progress)
        assert counter.is_blocked(instance.get_run_by_id(waiting.run_id))
        assert not counter.is_blocked(instance.get_run_by_id(other.run_id))
