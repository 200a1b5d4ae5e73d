"""The raw layer as Dagster assets: real materialisations over temporary folders and DuckDB files."""

import dagster as dg
import duckdb
import pytest

from customer_pipeline.defs.resources import SourcesResource, WarehouseResource
from customer_pipeline.defs.sources import checks
from customer_pipeline.defs.sources.app.assets import app_events
from customer_pipeline.defs.sources.call_center.assets import call_center_contacts
from customer_pipeline.defs.sources.pos.assets import pos_loyalty_signups, pos_transactions
from customer_pipeline.defs.sources.shop.assets import shop_database
from customer_pipeline_tests.landing import make_landing, write

RAW_ASSETS = [pos_loyalty_signups, pos_transactions, call_center_contacts, app_events, shop_database]
RAW_CHECKS = [
    checks.pos_loyalty_rows_accounted, checks.pos_transactions_rows_accounted,
    checks.call_center_rows_accounted, checks.app_events_rows_accounted, checks.shop_rows_accounted,
]


@pytest.fixture
def env(tmp_path):
    landing = make_landing(tmp_path / "landing")
    resources = {
        "warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
        "sources": SourcesResource(landing_dir=str(landing), shop_db_url=f"sqlite:///{landing / 'shop.sqlite'}"),
    }
    return landing, tmp_path / "w.duckdb", resources


def _snapshot(path):
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ('raw', 'quarantine') ORDER BY 1").fetchall()]
        return {t: con.execute(f"SELECT * EXCLUDE (_ingested_at, _run_id) FROM {t} ORDER BY ALL").fetchall()
                if t.startswith("raw.") else con.execute(f"SELECT count(*) FROM {t}").fetchall() for t in tables}


def test_raw_layer_materialises_with_checks_and_metadata(env):
    landing, wh, resources = env
    write(landing / "call_center/contacts_2026-10-04.csv", b"\x00junk")
    result = dg.materialize(RAW_ASSETS + RAW_CHECKS, resources=resources)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 9 and all(e.passed for e in evaluations)
    mats = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
    loyalty = mats["raw/pos_loyalty_signups"].materialization.metadata
    assert loyalty["dagster/row_count"].value == 2 and "A***" in loyalty["preview"].value
    assert "Anna" not in loyalty["preview"].value and "anna@example.de" not in loyalty["preview"].value  # masked
    assert mats["raw/shop_customers"].materialization.metadata["dagster/row_count"].value == 2
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT location, reason FROM quarantine.rejected_records").fetchall() == [
            ("call_center/contacts_2026-10-04.csv", "binary content: NUL bytes in the file")
        ]
        assert con.execute("SELECT count(*) FROM raw.app_events").fetchall() == [(4,)]


def test_rerun_on_unchanged_inputs_changes_nothing(env):
    _, wh, resources = env
    assert dg.materialize(RAW_ASSETS + RAW_CHECKS, resources=resources).success
    before = _snapshot(wh)
    again = dg.materialize(RAW_ASSETS + RAW_CHECKS, resources=resources)
    assert again.success and all(e.passed for e in again.get_asset_check_evaluations())
    assert _snapshot(wh) == before


def test_accounting_check_fails_when_rows_go_missing(env):
    _, wh, resources = env
    assert dg.materialize(RAW_ASSETS, resources=resources).success
    with duckdb.connect(str(wh)) as con:
        con.execute("DELETE FROM raw.pos_loyalty_signups WHERE card_no = 'L101'")
    result = dg.materialize([checks.pos_loyalty_rows_accounted, pos_loyalty_signups], resources=resources,
                            selection=dg.AssetSelection.checks(checks.pos_loyalty_rows_accounted), raise_on_error=False)
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert "read 2, stored 1, quarantined 0" in evaluation.metadata["mismatches"].value


def test_unreachable_shop_is_a_retryable_failure_with_a_clear_reason(env):
    landing, _, resources = env
    resources["sources"] = SourcesResource(landing_dir=str(landing), shop_db_url="postgresql://x@127.0.0.1:1/none")
    # invoked directly: the asset's retry policy (with backoff) applies in real runs only
    context = dg.build_asset_context(resources=resources)
    with pytest.raises(dg.Failure, match="shop database unreachable") as failure:
        list(shop_database(context))
    assert shop_database.op.retry_policy.max_retries == 3
    assert failure.value.allow_retries
