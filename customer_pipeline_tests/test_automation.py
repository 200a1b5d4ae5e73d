"""Automation: landing sensors, per-source schedules and jobs, and the downstream automation sensor."""

import json
import os

import dagster as dg
import duckdb
import pytest

from customer_pipeline.defs.automation import schedules, sensors
from customer_pipeline.defs.automation.jobs import SOURCE_ASSETS, SOURCE_JOBS
from customer_pipeline.defs.jobs import WAREHOUSE_TAGS
from customer_pipeline.defs.resources import SourcesResource, WarehouseResource
from customer_pipeline.definitions import defs as load_defs
from customer_pipeline.ingest.formats import POS_LOYALTY
from customer_pipeline_tests.landing import csv_bytes, loyalty_row, make_landing, write


@pytest.fixture(scope="module")
def defs():
    # a deployment that publishes: the publish asset exists only when the URL is set (test_publish_asset.py)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CUSTOMER_PIPELINE_PG_URL", "postgresql+psycopg2://u:secret@db:5432/x")
        return load_defs()


def _tick(sensor, landing, cursor=None):
    # no warehouse yet: only the cursor says what was seen (a first tick over a warehouse: test_sensor_first_tick.py)
    context = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(), cursor=cursor,
        resources={"sources": SourcesResource(landing_dir=str(landing), shop_db_url="sqlite://"),
                   "warehouse": WarehouseResource(path=str(landing.parent / "absent.duckdb"))},
    )
    result = sensor(context)
    return result.run_requests or [], result.cursor


def test_landing_sensor_requests_one_run_per_new_or_corrected_file_set(tmp_path):
    landing = tmp_path / "landing"
    sensor = sensors.pos_landing_sensor
    requests, cursor = _tick(sensor, landing)
    assert requests == []                                       # no folder yet: nothing to do
    first = write(landing / "pos/loyalty_signups_S01_2026-10-01.csv", csv_bytes(POS_LOYALTY.columns, [loyalty_row()]))
    [request], cursor = _tick(sensor, landing, cursor)
    assert request.run_key.startswith("pos:") and request.tags["landing_files"] == "1"
    assert request.tags["landing_first_file"] == "pos/loyalty_signups_S01_2026-10-01.csv"

    assert _tick(sensor, landing, cursor)[0] == []              # the same file again: no run
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))
    requests, cursor = _tick(sensor, landing, cursor)           # touched, same bytes: remembered, no run
    assert requests == [] and json.loads(cursor)[first.relative_to(landing).as_posix()][1] == first.stat().st_mtime_ns

    # a corrected delivery: same name, new content (same size even) -> a new run with a new key
    write(first, csv_bytes(POS_LOYALTY.columns, [loyalty_row(first="Anne")]))
    [corrected], cursor = _tick(sensor, landing, cursor)
    assert corrected.run_key != request.run_key

    # a late file is picked up on the next tick, with only itself in the new file set
    write(landing / "pos/transactions_S01_2026-10-01.csv", b"receipt_id\n")
    write(landing / "call_center/contacts_2026-10-02.csv", b"contact_id\n")   # another sensor's folder
    [late], cursor = _tick(sensor, landing, cursor)
    assert late.tags["landing_files"] == "1" and late.tags["landing_first_file"].startswith("pos/transactions_")
    assert _tick(sensor, landing, cursor)[0] == []


def test_each_folder_sensor_targets_its_source_job(tmp_path):
    landing = make_landing(tmp_path / "landing")
    for source, sensor in [("pos", sensors.pos_landing_sensor), ("call_center", sensors.call_center_landing_sensor),
                           ("app", sensors.app_landing_sensor)]:
        assert sensor.job_name == f"{source}_job"
        [request], _ = _tick(sensor, landing)
        assert int(request.tags["landing_files"]) == {"pos": 2, "call_center": 1, "app": 2}[source]


def test_every_schedule_and_sensor_starts_running(defs):
    repo = defs.get_repository_def()
    assert {s.name for s in repo.schedule_defs} == {f"{s}_schedule" for s in SOURCE_ASSETS}
    assert {s.name for s in repo.sensor_defs} == {
        "pos_landing_sensor", "call_center_landing_sensor", "app_landing_sensor", "suppression_landing_sensor",
        "downstream_automation_sensor", "run_failure_alert_sensor", "run_recovery_alert_sensor",
        "blocking_check_alert_sensor", "freshness_alert_sensor", "quarantine_alert_sensor"}
    for instigator in [*repo.schedule_defs, *repo.sensor_defs]:
        assert instigator.default_status.value == "RUNNING", instigator.name
    assert {s.name: s.execution_timezone for s in repo.schedule_defs} == {f"{s}_schedule": "UTC" for s in SOURCE_ASSETS}
    assert {s.name: s.cron_schedule for s in repo.schedule_defs} == {
        "pos_schedule": "30 2 * * *", "shop_schedule": "5 * * * *",
        "call_center_schedule": "15 */4 * * *", "app_schedule": "*/15 * * * *", "suppression_schedule": "45 2 * * *"}
    automation = repo.get_sensor_def("downstream_automation_sensor")
    assert automation.run_tags == WAREHOUSE_TAGS


def test_cadence_and_timezone_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CUSTOMER_PIPELINE_POS_CRON", "0 4 * * 1-5")
    monkeypatch.setenv("CUSTOMER_PIPELINE_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("CUSTOMER_PIPELINE_AUTOMATION", "stopped")
    schedule = schedules.source_schedule("pos")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 4 * * 1-5", "Europe/Berlin")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    monkeypatch.setenv("CUSTOMER_PIPELINE_SHOP_CRON", "")                     # empty = unset: the SLA default
    assert schedules.source_schedule("shop").cron_schedule == "5 * * * *"


def test_file_schedules_start_a_run_only_for_file_versions_the_warehouse_lacks(defs, tmp_path):
    """A schedule tick with nothing new must not start a run (green for nothing, and a rebuild downstream)."""
    landing, wh = make_landing(tmp_path / "landing"), tmp_path / "w.duckdb"
    resources = {"warehouse": WarehouseResource(path=str(wh)),
                 "sources": SourcesResource(landing_dir=str(landing), shop_db_url="sqlite://")}

    def tick(schedule):
        with dg.build_schedule_context(instance=dg.DagsterInstance.ephemeral(), resources=resources) as context:
            data = schedule.evaluate_tick(context)
        return list(data.run_requests or []), data.skip_message

    [request], _ = tick(schedules.pos_schedule)  # nothing loaded yet: the files in pos/ are new
    assert request.run_key.startswith("pos:") and int(request.tags["landing_files"]) >= 1
    assert defs.resolve_job_def("pos_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), resources=resources).success
    requests, skipped = tick(schedules.pos_schedule)
    assert requests == [] and skipped.startswith("no new or corrected file in pos/")
    write(landing / "pos/loyalty_signups_S07_2026-10-09.csv", csv_bytes(POS_LOYALTY.columns, [loyalty_row("L7")]))
    [late], _ = tick(schedules.pos_schedule)
    assert {"landing_files": "1", "landing_first_file": "pos/loyalty_signups_S07_2026-10-09.csv"}.items() <= late.tags.items()
    # the shop is a database: its schedule runs on every tick (the watermark decides what is read)
    assert schedules.shop_schedule.job_name == "shop_job"
    with dg.build_schedule_context(instance=dg.DagsterInstance.ephemeral(), resources=resources) as context:
        assert len(schedules.shop_schedule.evaluate_tick(context).run_requests) == 1


def test_source_job_loads_its_raw_assets_with_their_checks(defs, tmp_path):
    landing = make_landing(tmp_path / "landing")
    wh = tmp_path / "w.duckdb"
    job = defs.resolve_job_def("pos_job")
    assert {**WAREHOUSE_TAGS, "dagster/max_retries": "2"}.items() <= job.tags.items()
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        resources={"warehouse": WarehouseResource(path=str(wh)),
                   "sources": SourcesResource(landing_dir=str(landing), shop_db_url="sqlite://")},
    )
    assert result.success
    assert {e.asset_key for e in result.get_asset_materialization_events()} == set(SOURCE_ASSETS["pos"])
    checks = result.get_asset_check_evaluations()
    assert {c.asset_key for c in checks} == set(SOURCE_ASSETS["pos"]) and all(c.passed for c in checks)
    assert any(c.check_name == "rows_accounted_for" for c in checks) and len(checks) > 2   # + GX suites
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'shop_%'").fetchall() == [(0,)]


# --- downstream automation: the same selection and condition as the real sensor, on a small graph ----------

CHECK_PASSES = {"value": True}


@dg.asset(key=["raw", "a"], group_name="raw",
          check_specs=[dg.AssetCheckSpec("ok", asset=dg.AssetKey(["raw", "a"]), blocking=True)])
def raw_a():
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="ok", passed=CHECK_PASSES["value"])


@dg.asset(key=["raw", "b"], group_name="raw")
def raw_b():
    return None


@dg.asset(key=["staging", "people"], group_name="staging", deps=[raw_a, raw_b])
def people():
    return None


@dg.asset(key=["gold", "golden"], group_name="gold", deps=[people])
def golden():
    return None


def _automation_tick(defs_, instance, cursor):
    sensor = sensors.downstream_sensor("downstream")
    context = dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=defs_.get_repository_def())
    result = sensor(context)
    requested = set()
    for request in result.run_requests or []:
        assert request.tags.items() >= WAREHOUSE_TAGS.items()
        requested |= set(request.asset_selection or [])
    return requested, result.cursor


def test_downstream_follows_upstreams_and_a_failed_blocking_check_holds_it_back():
    defs_ = dg.Definitions(assets=[raw_a, raw_b, people, golden])
    downstream = {dg.AssetKey(["staging", "people"]), dg.AssetKey(["gold", "golden"])}
    with dg.instance_for_test() as instance:
        def load(*assets):
            assert dg.materialize(list(assets), instance=instance, raise_on_error=False) is not None

        CHECK_PASSES["value"] = True
        # the sensor's first tick only records the state: eager reacts to updates it sees happen
        assert _automation_tick(defs_, instance, None)[0] == set()
        _, cursor = _automation_tick(defs_, instance, None)
        load(raw_a, raw_b)
        requested, cursor = _automation_tick(defs_, instance, cursor)
        assert requested == downstream                         # both stages in one run
        load(people, golden)
        assert _automation_tick(defs_, instance, cursor)[0] == set()
        _, cursor = _automation_tick(defs_, instance, cursor)

        load(raw_b)                                            # raw_a is late: raw_b still flows
        requested, cursor = _automation_tick(defs_, instance, cursor)
        assert requested == downstream
        load(people, golden)
        _, cursor = _automation_tick(defs_, instance, cursor)

        CHECK_PASSES["value"] = False                          # raw_a arrives with a failed blocking check
        load(raw_a)
        assert _automation_tick(defs_, instance, cursor)[0] == set()
        CHECK_PASSES["value"] = True                           # a corrected delivery passes: gold moves again
        load(raw_a)
        requested, _ = _automation_tick(defs_, instance, cursor)
        assert requested == downstream


def test_downstream_selection_covers_every_non_raw_asset(defs):
    graph = defs.get_repository_def().asset_graph
    selected = sensors.DOWNSTREAM.resolve(graph)
    assert dg.AssetKey(["staging", "person_records"]) in selected
    assert dg.AssetKey(["gold", "source_freshness"]) in selected
    assert dg.AssetKey(["publish", "postgres_gold"]) in selected
    assert dg.AssetKey(["gold", "golden_customers"]) in selected
    assert not any(k.path[0] == "raw" for k in selected)
    # the identity model is trained when missing and never retrained by new data (its own condition)
    assert dg.AssetKey(["identity", "splink_model"]) in selected
    model = graph.get(dg.AssetKey(["identity", "splink_model"])).automation_condition
    assert model.get_label() == "trained when missing, blocking checks passed"
    # the charts are drawn when missing (retraining redraws them), not on every new delivery
    assert dg.AssetKey(["identity", "model_charts"]) in selected
    charts = graph.get(dg.AssetKey(["identity", "model_charts"])).automation_condition
    assert charts.get_label() == "when missing, blocking checks passed"
    # raw checks run in the source jobs; the downstream runs carry only the checks of what they build
    checks = sensors.DOWNSTREAM.resolve_checks(graph)
    assert checks and not any(c.asset_key.path[0] == "raw" for c in checks)
