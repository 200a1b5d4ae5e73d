"""A landing sensor's first tick (no cursor) takes what the warehouse already holds as seen (issue 12)."""

import json
import os

import dagster as dg

from customer_pipeline.defs.automation import sensors
from customer_pipeline.defs.resources import SourcesResource, WarehouseResource
from customer_pipeline.definitions import defs as load_defs
from customer_pipeline.ingest.formats import POS_LOYALTY
from customer_pipeline_tests.landing import csv_bytes, loyalty_row, make_landing, write

LOYALTY = "pos/loyalty_signups_S01_2026-10-01.csv"
TRANSACTIONS = "pos/transactions_S01_2026-10-01.csv"


def _tick(sensor, landing, warehouse, cursor=None):
    context = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(), cursor=cursor,
        resources={"sources": SourcesResource(landing_dir=str(landing), shop_db_url="sqlite://"),
                   "warehouse": WarehouseResource(path=str(warehouse))},
    )
    result = sensor(context)
    return result.run_requests or [], result.cursor, result.skip_reason and result.skip_reason.skip_message


def _loaded_by_pos_job(tmp_path, *extra: tuple[str, bytes]):
    """A landing folder and a warehouse into which the real pos_job has loaded every POS file."""
    landing = make_landing(tmp_path / "landing")
    for rel, data in extra:
        write(landing / rel, data)
    warehouse = tmp_path / "w.duckdb"
    result = load_defs().resolve_job_def("pos_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        resources={"warehouse": WarehouseResource(path=str(warehouse)),
                   "sources": SourcesResource(landing_dir=str(landing), shop_db_url="sqlite://")},
    )
    assert result.success
    return landing, warehouse


def test_first_tick_after_a_load_starts_no_run_and_remembers_every_file(tmp_path):
    landing, warehouse = _loaded_by_pos_job(tmp_path)
    before = warehouse.stat().st_mtime_ns
    requests, cursor, skip_reason = _tick(sensors.pos_landing_sensor, landing, warehouse)
    assert requests == []
    assert "2 already in the warehouse" in skip_reason
    assert set(json.loads(cursor)) == {LOYALTY, TRANSACTIONS}
    assert warehouse.stat().st_mtime_ns == before                 # read only
    # the next tick goes on from that cursor: still nothing to do
    assert _tick(sensors.pos_landing_sensor, landing, warehouse, cursor)[0] == []


def test_first_tick_starts_a_run_for_new_and_corrected_files_only(tmp_path):
    landing, warehouse = _loaded_by_pos_job(tmp_path)
    write(landing / LOYALTY, csv_bytes(POS_LOYALTY.columns, [loyalty_row(first="Anne")]))        # corrected
    write(landing / "pos/loyalty_signups_S02_2026-10-02.csv", csv_bytes(POS_LOYALTY.columns, [loyalty_row("L7")]))
    # the same bytes under a new mtime are the version the warehouse holds: seen
    transactions = landing / TRANSACTIONS
    os.utime(transactions, ns=(transactions.stat().st_atime_ns, transactions.stat().st_mtime_ns + 10**9))
    [request], cursor, _ = _tick(sensors.pos_landing_sensor, landing, warehouse)
    assert request.tags["landing_files"] == "2" and request.tags["landing_first_file"] == LOYALTY
    assert set(json.loads(cursor)) == {LOYALTY, TRANSACTIONS, "pos/loyalty_signups_S02_2026-10-02.csv"}
    assert _tick(sensors.pos_landing_sensor, landing, warehouse, cursor)[0] == []


def test_first_tick_takes_a_quarantined_file_as_seen_too(tmp_path):
    # a stray file the loader quarantined is recorded like a loaded one: reloading it would change nothing
    landing, warehouse = _loaded_by_pos_job(tmp_path, ("pos/notes.txt", b"not a contract file\n"))
    requests, cursor, skip_reason = _tick(sensors.pos_landing_sensor, landing, warehouse)
    assert requests == [] and "pos/notes.txt" in json.loads(cursor)
    assert "3 already in the warehouse" in skip_reason


def test_first_tick_counts_only_its_own_folder_as_seen(tmp_path):
    landing, warehouse = _loaded_by_pos_job(tmp_path)                # POS loaded, call center and app not
    [request], _, _ = _tick(sensors.call_center_landing_sensor, landing, warehouse)
    assert request.tags["landing_files"] == "1"
    [request], _, _ = _tick(sensors.app_landing_sensor, landing, warehouse)
    assert request.tags["landing_files"] == "2"


def test_first_tick_without_a_warehouse_sees_nothing_and_creates_none(tmp_path):
    landing = make_landing(tmp_path / "landing")
    warehouse = tmp_path / "none" / "w.duckdb"
    [request], cursor, _ = _tick(sensors.pos_landing_sensor, landing, warehouse)
    assert request.tags["landing_files"] == "2" and set(json.loads(cursor)) == {LOYALTY, TRANSACTIONS}
    assert not warehouse.exists() and not warehouse.parent.exists()
