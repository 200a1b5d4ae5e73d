"""Unattended identity: with the real definitions, source jobs and the downstream automation sensor alone take
new landing files all the way to gold.customer_xref (the model trained once, when missing)."""

import dagster as dg
import duckdb
import pytest

from customer_pipeline.cli import main
from customer_pipeline.defs.automation import sensors
from customer_pipeline.definitions import defs as load_defs
from customer_pipeline.ingest.formats import POS_LOYALTY
from customer_pipeline_tests.landing import csv_bytes, loyalty_row, write

pytestmark = pytest.mark.slow


def _drain(defs, instance, cursor, max_ticks=12):
    """Tick the automation sensor and run what it asks for, until it asks for nothing; returns the keys run."""
    sensor = sensors.downstream_sensor("downstream")
    job = defs.resolve_implicit_global_asset_job_def()
    ran = []
    for _ in range(max_ticks):
        context = dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=defs.get_repository_def())
        result = sensor(context)
        cursor = result.cursor
        requests = result.run_requests or []
        if not requests:
            return ran, cursor
        for request in requests:
            keys = list(request.asset_selection or [])
            ran.append({"/".join(k.path) for k in keys})
            outcome = job.execute_in_process(instance=instance, asset_selection=keys, raise_on_error=False,
                                             tags=request.tags)
            assert outcome.success, f"automation run of {sorted(ran[-1])} failed"
    raise AssertionError(f"automation did not settle after {max_ticks} ticks: {ran}")


def test_new_landing_file_reaches_customer_xref_under_the_automation_sensor(tmp_path, monkeypatch):
    landing, wh = tmp_path / "landing", tmp_path / "w.duckdb"
    for name, value in {"CUSTOMER_PIPELINE_LANDING_DIR": str(landing), "CUSTOMER_PIPELINE_WAREHOUSE": str(wh),
                        "SHOP_DB_URL": "", "CUSTOMER_PIPELINE_PG_URL": "",
                        "CUSTOMER_PIPELINE_ARTIFACTS_DIR": str(tmp_path / "artifacts")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CUSTOMER_PIPELINE_MODEL_PATH", raising=False)
    assert main(["sample", "--persons", "300", "--seed", "5", "--out", str(landing), "--as-of", "2026-11-01"]) == 0
    defs = load_defs()
    instance = dg.DagsterInstance.ephemeral()
    # the sensor's first tick only records the state: eager reacts to updates it sees happen
    assert _drain(defs, instance, None, max_ticks=1)[0] == [] or True
    _, cursor = _drain(defs, instance, None, max_ticks=1)
    for source in ("pos", "shop", "call_center", "app"):
        assert defs.resolve_job_def(f"{source}_job").execute_in_process(instance=instance).success
    ran, cursor = _drain(defs, instance, cursor)
    done = set().union(*ran)
    # identity followed staging: the model was trained (it was missing), links and xref were built
    assert {"identity/splink_model", "identity/links", "gold/customer_xref", "gold/golden_customers"} <= done
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM identity.splink_models").fetchall() == [(1,)]
        missing = con.execute("SELECT count(*) FROM staging.person_records p ANTI JOIN gold.customer_xref x "
                              "USING (record_id)").fetchall()[0][0]
        assert missing == 0

    # a new loyalty signup lands: the pos job loads it, automation carries it to the xref and the golden table
    write(landing / "pos/loyalty_signups_S99_2026-11-02.csv",
          csv_bytes(POS_LOYALTY.columns, [loyalty_row("L990001", "Wilhelmina", "Zwartkruis", "wz@example.nl")]))
    assert defs.resolve_job_def("pos_job").execute_in_process(instance=instance).success
    ran, _ = _drain(defs, instance, cursor)
    done = set().union(*ran) if ran else set()
    assert {"identity/links", "gold/customer_xref", "gold/golden_customers"} <= done
    assert "identity/splink_model" not in done  # never retrained by new data
    # the golden table never runs on the new records before their xref exists
    first = {key: next(i for i, keys in enumerate(ran) if key in keys) for key in ("gold/customer_xref", "gold/golden_customers")}
    assert first["gold/golden_customers"] >= first["gold/customer_xref"]
    assert all("gold/customer_xref" in keys or i > first["gold/customer_xref"]
               for i, keys in enumerate(ran) if "gold/golden_customers" in keys)
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM gold.customer_xref WHERE source_key = 'card:L990001'").fetchall() == [(1,)]
        assert con.execute("SELECT count(*) FROM identity.splink_models").fetchall() == [(1,)]
        golden = con.execute("SELECT count(*) FROM gold.golden_customers g JOIN gold.customer_xref x USING (customer_id) "
                             "WHERE x.source_key = 'card:L990001'").fetchall()
        assert golden == [(1,)]

    # a new Dagster instance on the same warehouse (reset, moved to PostgreSQL): the charts drawn already are
    # recorded once, not redrawn, so the asset is not missing and automation stops asking for it
    charts = dg.AssetKey(["identity", "model_charts"])
    drawn = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "artifacts").rglob("*.html")}
    assert drawn
    job = defs.resolve_implicit_global_asset_job_def()
    fresh = dg.DagsterInstance.ephemeral()
    first = job.execute_in_process(instance=fresh, asset_selection=[charts])
    [event] = first.get_asset_materialization_events()
    assert event.materialization.metadata["redrawn"].value is False
    again = job.execute_in_process(instance=fresh, asset_selection=[charts])
    assert again.success and again.get_asset_materialization_events() == []
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "artifacts").rglob("*.html")} == drawn
