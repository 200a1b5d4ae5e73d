"""GX suites as Dagster asset checks: results, metadata, and blocking of downstream assets."""

import subprocess
import sys

import dagster as dg
import pandas as pd

from customer_pipeline import warehouse as wh
from customer_pipeline.defs.quality import checks
from customer_pipeline.defs.quality.gx_factory import build_gx_checks
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.quality import gx_runner, suites, thresholds
from customer_pipeline.quality.suites import Suite

UPSTREAM = dg.AssetKey(["raw", "things"])
DOWNSTREAM = dg.AssetKey(["staging", "things_clean"])

THINGS = Suite(
    name="raw_things",
    table="raw.things",
    rules=(
        suites.required_columns(("id", "email")),
        suites.not_null("id"),
        suites.unique("id"),
        suites.email_shape("email"),  # a warning
    ),
)


def _pipeline(rows: pd.DataFrame):
    """A tiny upstream asset writing `raw.things`, its GX checks, and a downstream asset."""

    @dg.asset(key=UPSTREAM)
    def things(warehouse: WarehouseResource) -> None:
        with warehouse.connect() as con:
            wh.replace_table(con, "raw.things", rows)

    @dg.asset(key=DOWNSTREAM, deps=[UPSTREAM])
    def things_clean(warehouse: WarehouseResource) -> None:
        with warehouse.connect() as con:
            con.execute("CREATE OR REPLACE TABLE staging.things_clean AS SELECT DISTINCT * FROM raw.things")

    return [things, build_gx_checks(THINGS, UPSTREAM), things_clean]



def _run(tmp_path, rows: pd.DataFrame) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        _pipeline(rows),
        resources={"warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb"))},
        raise_on_error=False,
    )


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _materialized(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events()}


GOOD = pd.DataFrame({"id": ["1", "2", "3"], "email": ["a@x.de", "b@y.fr", None]})


def test_passing_suite_yields_passing_checks_and_downstream_runs(tmp_path):
    result = _run(tmp_path, GOOD)
    evals = _evaluations(result)
    assert result.success
    assert set(evals) == {r.name for r in THINGS.rules}
    assert all(e.passed for e in evals.values())
    assert evals["id_unique"].metadata["unexpected_count"].value == 0
    assert evals["id_unique"].metadata["rows_checked"].value == 3
    assert _materialized(result) == {UPSTREAM, DOWNSTREAM}


def test_failing_expectation_yields_failed_check_with_evidence(tmp_path):
    rows = pd.DataFrame({"id": ["1", "2", "2", "2", None], "email": ["a@x.de"] * 5})
    evals = _evaluations(_run(tmp_path, rows))
    unique = evals["id_unique"]
    assert not unique.passed
    assert unique.severity == dg.AssetCheckSeverity.ERROR
    assert unique.blocking
    assert unique.metadata["unexpected_count"].value == 3
    assert unique.metadata["unexpected_examples"].value == ["2"]
    not_null = evals["id_not_null"]
    assert not not_null.passed and not_null.metadata["unexpected_count"].value == 1
    assert evals["required_columns_present"].passed


def test_blocking_failure_stops_downstream_in_the_same_run(tmp_path):
    rows = pd.DataFrame({"id": ["1", "1"], "email": ["a@x.de", "b@y.fr"]})
    result = _run(tmp_path, rows)
    assert not result.success
    assert not _evaluations(result)["id_unique"].passed
    assert _materialized(result) == {UPSTREAM}
    started = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}
    assert "gx_raw_things" in started and "staging__things_clean" not in started
    with wh.connect(tmp_path / "w.duckdb", read_only=True) as con:
        assert not wh.table_exists(con, "staging.things_clean")


def test_warning_failure_does_not_block(tmp_path):
    rows = pd.DataFrame({"id": ["1", "2"], "email": ["not an email", "neither"]})
    result = _run(tmp_path, rows)
    warn = _evaluations(result)["email_valid_share"]
    assert not warn.passed
    assert warn.severity == dg.AssetCheckSeverity.WARN
    assert not warn.blocking
    assert warn.metadata["unexpected_count"].value == 2
    assert warn.metadata["threshold"].value == thresholds.EMAIL_VALID_MIN_SHARE
    assert result.success
    assert DOWNSTREAM in _materialized(result)


def test_missing_column_fails_the_column_check(tmp_path):
    evals = _evaluations(_run(tmp_path, pd.DataFrame({"id": ["1"]})))
    columns = evals["required_columns_present"]
    assert not columns.passed
    assert columns.metadata["unexpected_examples"].value == ["missing: email"]
    assert "error" in evals["email_valid_share"].metadata


def _raw_signups(n: int = 3) -> pd.DataFrame:
    df = pd.DataFrame({
        "card_no": [f"C{i}" for i in range(n)], "store_id": "S01", "country": "DE",
        "signed_up_at": "2026-11-01T09:30:00+01:00", "first_name": "Anna", "last_name": "Meier",
        "gender": "F", "birth_date": "01.02.1980", "phone": "030 1234567",
        "email": [f"anna{i}@example.de" for i in range(n)], "postcode": "10115", "city": "Berlin",
        "marketing_consent": "Y",
    })
    for col in suites.LINEAGE_COLUMNS:
        df[col] = "x"
    df["_location"] = "pos/loyalty_signups_S01_2026-11-01.csv"
    df["_record_ref"] = [str(i + 2) for i in range(n)]
    return df


def test_raw_suite_passes_on_contract_shaped_rows():
    outcomes = gx_runner.validate(_raw_signups(), suites.POS_LOYALTY_SIGNUPS)
    assert [o.name for o in outcomes if not o.success] == []


def test_corrected_file_repeating_a_card_is_a_warning_not_a_block():
    df = _raw_signups(2)
    corrected = df.iloc[[0]].assign(_location="pos/loyalty_signups_S01_2026-11-02.csv", _record_ref="2")
    outcomes = {o.name: o for o in gx_runner.validate(pd.concat([df, corrected]), suites.POS_LOYALTY_SIGNUPS)}
    assert outcomes[suites.LINEAGE_KEY_UNIQUE].success
    assert not outcomes["card_no_duplicates"].success and not outcomes["card_no_duplicates"].blocking


def test_person_records_key_must_be_unique_and_sources_known():
    df = pd.DataFrame({c: [None] * 3 for c in suites.PERSON_RECORD_COLUMNS})
    df["source"] = ["pos", "pos", "fax"]
    df["source_key"] = ["card:1", "card:1", "card:2"]
    outcomes = {o.name: o for o in gx_runner.validate(df, suites.PERSON_RECORDS)}
    assert outcomes[checks.REQUIRED_COLUMNS].success
    assert not outcomes[checks.PERSON_KEY_UNIQUE].success
    assert outcomes[checks.PERSON_KEY_UNIQUE].unexpected_count == 2
    assert not outcomes[checks.PERSON_SOURCE_ALLOWED].success
    assert outcomes[checks.PERSON_SOURCE_ALLOWED].examples == ["fax"]
    assert all(outcomes[n].blocking for n in (checks.PERSON_KEY_UNIQUE, checks.PERSON_SOURCE_ALLOWED))


def test_every_gated_asset_has_blocking_and_warning_checks():
    defs = dg.Definitions(assets=[], asset_checks=[
        v for v in vars(checks).values() if isinstance(v, dg.AssetChecksDefinition)
    ])
    specs = [s for cd in defs.asset_checks for s in cd.check_specs]
    keys = {s.asset_key for s in specs}
    assert keys == {dg.AssetKey(["raw", t]) for t in suites.RAW_SUITES} | {checks.PERSON_RECORDS_KEY}
    for key in keys:
        assert any(s.blocking for s in specs if s.asset_key == key)
        assert any(s.name == checks.REQUIRED_COLUMNS and s.blocking for s in specs if s.asset_key == key)


def _printed_by(code: str) -> list[str]:
    """What a fresh interpreter prints running `code` (imports are per process: each test needs its own)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_loading_the_quality_definitions_does_not_import_gx():
    code = (
        "import sys, customer_pipeline.defs.quality.checks, customer_pipeline.defs.quality.assets; "
        "print('great_expectations' in sys.modules)"
    )
    assert _printed_by(code) == ["False"]


def test_a_load_with_new_rows_imports_gx_in_the_background_and_one_without_does_not():
    """Issue 13: the GX import (2-3 s) overlaps the other loads when a load brought rows for its check to validate;
    a run with nothing new never imports it."""
    code = (
        "import sys, duckdb\n"
        "from customer_pipeline.defs.sources.metadata import table_metadata\n"
        "from customer_pipeline.quality import gx_runner\n"
        "con = duckdb.connect()\n"
        "con.execute(\"CREATE SCHEMA raw; CREATE TABLE raw.t (a VARCHAR, _location VARCHAR, _record_ref VARCHAR)\")\n"
        "table_metadata(con, 'raw.t', {'rows_loaded': 0, 'rows_read': 3})\n"
        "before = gx_runner._warming is None and 'great_expectations' not in sys.modules\n"
        "table_metadata(con, 'raw.t', {'rows_loaded': 2})\n"
        "gx_runner._warming.join(120)\n"
        "print(before, 'great_expectations.expectations' in sys.modules)\n"
    )
    assert _printed_by(code) == ["True", "True"]


def test_a_raw_run_with_a_landing_folder_to_load_imports_gx_from_its_start_and_one_of_the_shop_alone_does_not():
    """Issue 13: `customer-pipeline run` starts the GX import with the raw run when it loads some landing folder."""
    code = (
        "import sys, dagster as dg\n"
        "from customer_pipeline import runner\n"
        "from customer_pipeline.quality import gx_runner\n"
        "shop = runner.warm_gx_for([dg.AssetKey(['raw', 'shop_customers'])])\n"
        "before = gx_runner._warming is None and 'great_expectations' not in sys.modules\n"
        "files = runner.warm_gx_for([dg.AssetKey(['raw', 'shop_customers']), dg.AssetKey(['raw', 'app_events'])])\n"
        "gx_runner._warming.join(120)\n"
        "print(shop, before, files, 'great_expectations.expectations' in sys.modules)\n"
    )
    assert _printed_by(code) == ["False", "True", "True", "True"]


def test_the_background_gx_import_starts_only_once_the_modules_it_shares_with_the_run_are_imported():
    """A run's own thread and the GX import must not import one module at the same time (a half-initialised
    module, seen in CI): `warm_up` imports the shared ones in the calling thread before it starts the import."""
    code = (
        "import sys, threading\n"
        "from customer_pipeline.quality import gx_runner\n"
        "before = [m for m in gx_runner.SHARED_MODULES if m in sys.modules]\n"
        "seen, start = [], threading.Thread.start\n"
        "def recording_start(self):\n"
        "    seen.append(all(m in sys.modules for m in gx_runner.SHARED_MODULES))\n"
        "    start(self)\n"
        "threading.Thread.start = recording_start\n"
        "gx_runner.warm_up()\n"
        "gx_runner._warming.join(120)\n"
        "print(before == [] or before, seen == [True])\n"
    )
    assert _printed_by(code) == ["True", "True"]
