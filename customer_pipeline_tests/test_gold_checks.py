"""Gold-layer checks on a real temporary DuckDB warehouse: each passes on a sound gold layer and fails when broken.

The warehouse is filled by the real `golden_customers` step (golden customers + households) from a small
staging.person_records and gold.customer_xref.
"""

import dagster as dg
import pandas as pd
import pytest

from customer_pipeline import warehouse as wh
from customer_pipeline.defs.gold import checks
from customer_pipeline.defs.gold.assets import GOLDEN_KEY, HOUSEHOLD_HISTORY_KEY, HOUSEHOLDS_KEY, golden_customers
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.identity.households import MAX_MEMBERS

T0 = pd.Timestamp("2026-01-10 09:00")
LANDLINE = "+493012345678"


def _record(source, key, customer, **values) -> dict:
    return {"source": source, "source_key": key, "record_id": f"{source}|{key}", "_customer": customer,
            "record_created_at": T0, "record_updated_at": T0, **values}


RECORDS = [
    # Anna and Ben live at Hauptstraße 5; Ben's card gives no street but the shared landline; Clara lives alone
    _record("shop", "customer:1", "C1", first_name="Anna", last_name="Weber", street="Hauptstraße 5",
            postcode="10115", city="Berlin", country="DE", phone_e164=LANDLINE, phone_valid=True,
            phone_type="fixed_line"),
    _record("pos", "card:100", "C1", first_name="Anna", last_name="Weber", postcode="10115", city="Berlin",
            country="DE"),
    _record("shop", "customer:2", "C2", first_name="Ben", last_name="Weber", street="Hauptstr. 5",
            postcode="10115", city="Berlin", country="DE"),
    _record("pos", "card:200", "C3", first_name="Carl", last_name="Weber", phone_e164=LANDLINE, phone_valid=True,
            phone_type="fixed_line"),
    _record("shop", "customer:4", "C4", first_name="Clara", last_name="Roth", street="Lindenweg 1",
            postcode="80331", city="München", country="DE"),
    _record("call_center", "contact:9", "C5", first_name="Dora", last_name="Kim"),
]


def _identity_output(path) -> WarehouseResource:
    """staging.person_records and the gold.customer_xref the identity stage would have written."""
    records = pd.DataFrame(RECORDS)
    xref = records[["_customer", "source", "source_key", "record_id"]].rename(columns={"_customer": "customer_id"})
    xref = xref.assign(match_probability=1.0, assigned_at=T0, customer_created_at=T0)
    with wh.connect(path) as con:
        wh.replace_table(con, "staging.person_records", records.drop(columns=["_customer"]))
        wh.replace_table(con, "gold.customer_xref", xref)
    return WarehouseResource(path=str(path))


def _golden_step(resource: WarehouseResource) -> dict:
    """Run the real golden_customers step; the metadata of each asset it materialised."""
    result = dg.materialize([golden_customers], resources={"warehouse": resource})
    assert result.success
    return {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}


@pytest.fixture
def warehouse(tmp_path) -> WarehouseResource:
    resource = _identity_output(tmp_path / "w.duckdb")
    _golden_step(resource)
    return resource


def _sql(resource: WarehouseResource, *statements: str) -> None:
    with resource.connect() as con:
        for statement in statements:
            con.execute(statement)


def _query(resource: WarehouseResource, sql: str) -> list[tuple]:
    with resource.connect(read_only=True) as con:
        return con.execute(sql).fetchall()


def _meta(result: dg.AssetCheckResult) -> dict:
    return {k: v.value for k, v in result.metadata.items()}


ALL_CHECKS = [checks.golden_customer_id_unique, checks.golden_customers_match_xref, checks.xref_every_record_once,
              checks.xref_no_oversized_customer, checks.households_ids_consistent]


# --- the step that feeds them --------------------------------------------------------------------------------


def test_golden_step_writes_household_ids_households_and_their_metadata(tmp_path):
    resource = _identity_output(tmp_path / "w.duckdb")
    mats = _golden_step(resource)
    assert set(mats) == {GOLDEN_KEY, HOUSEHOLDS_KEY, HOUSEHOLD_HISTORY_KEY}
    golden = dict(_query(resource, "SELECT customer_id, household_id FROM gold.golden_customers"))
    cols = [r[0] for r in _query(resource, "DESCRIBE gold.golden_customers")]
    assert cols[:2] == ["customer_id", "household_id"]
    # Anna, Ben (same address, another spelling) and Carl (no street, their landline) are one household
    assert golden["C1"] == golden["C2"] == golden["C3"] is not None
    assert golden["C4"] not in (None, golden["C1"]) and golden["C5"] is None
    hh = mats[HOUSEHOLDS_KEY]
    assert hh["dagster/row_count"].value == 2 and hh["largest_household"].value == 3
    assert hh["customers_without_household"].value == 1
    assert hh["customers_by_basis"].value == {"address": 3, "phone": 1, "no_address": 1}
    assert "| 3 | 1 |" in hh["members_histogram"].value and "| 1 | 1 |" in hh["members_histogram"].value
    assert hh["max_members"].value == MAX_MEMBERS
    assert "Hauptstr" not in hh["preview"].value and LANDLINE not in hh["preview"].value
    assert mats[GOLDEN_KEY]["customers_with_household"].value == 4
    [(landline, members)] = _query(
        resource, f"SELECT landline, members FROM gold.households WHERE household_id = '{golden['C1']}'")
    assert (landline, members) == (LANDLINE, 3)
    # a second run keeps every household id and records no change
    _golden_step(resource)
    assert dict(_query(resource, "SELECT customer_id, household_id FROM gold.golden_customers")) == golden
    assert _query(resource, "SELECT count(*) FROM gold.household_id_history") == [(0,)]


def test_checks_are_blocking_errors_except_the_size_warning():
    specs = {spec.name: spec for check in ALL_CHECKS for spec in check.check_specs}
    assert set(specs) == {checks.CUSTOMER_ID_UNIQUE, checks.GOLDEN_MATCHES_XREF, checks.EVERY_RECORD_ONCE,
                          checks.NO_OVERSIZED_CUSTOMER, checks.HOUSEHOLDS_CONSISTENT}
    assert {n for n, s in specs.items() if s.blocking} == set(specs) - {checks.NO_OVERSIZED_CUSTOMER}
    assert specs[checks.HOUSEHOLDS_CONSISTENT].asset_key == HOUSEHOLDS_KEY
    assert specs[checks.EVERY_RECORD_ONCE].asset_key == dg.AssetKey(["gold", "customer_xref"])


def test_every_check_passes_on_a_sound_gold_layer(warehouse):
    for check in ALL_CHECKS:
        result = check(warehouse=warehouse)
        assert result.passed, (check.check_specs, _meta(result))


# --- customer_id unique and not null ---------------------------------------------------------------------


def test_customer_id_check_passes_with_readable_counts(warehouse):
    result = checks.golden_customer_id_unique(warehouse=warehouse)
    assert result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert _meta(result) == {"rows": 5, "distinct_customer_ids": 5, "null_customer_ids": 0,
                             "duplicated_customer_ids": 0, "duplicated_examples": "none"}


def test_customer_id_check_fails_on_a_repeated_or_missing_id(warehouse):
    _sql(warehouse, "INSERT INTO gold.golden_customers (customer_id) VALUES ('C4'), ('C4'), (NULL)")
    result = checks.golden_customer_id_unique(warehouse=warehouse)
    meta = _meta(result)
    assert not result.passed
    assert (meta["null_customer_ids"], meta["duplicated_customer_ids"], meta["duplicated_examples"]) == (1, 1, "C4")


def test_golden_and_xref_must_describe_the_same_customers(warehouse):
    _sql(warehouse, "DELETE FROM gold.golden_customers WHERE customer_id = 'C4'",
         "INSERT INTO gold.golden_customers (customer_id) VALUES ('C_orphan')")
    result = checks.golden_customers_match_xref(warehouse=warehouse)
    assert not result.passed
    assert _meta(result) == {"xref_customers_without_golden_row": 1, "golden_rows_without_xref_records": 1}


# --- every record in the xref exactly once -----------------------------------------------------------------


def test_record_check_fails_on_a_record_missing_from_the_xref(warehouse):
    _sql(warehouse, "INSERT INTO staging.person_records (source, source_key, record_id) "
                    "VALUES ('app', 'user:7', 'app|user:7'), ('app', 'user:8', 'app|user:8')")
    result = checks.xref_every_record_once(warehouse=warehouse)
    meta = _meta(result)
    assert not result.passed
    assert meta["person_records"] == len(RECORDS) + 2
    assert meta["records_missing_from_xref"] == 2 and meta["missing_by_source"] == {"app": 2}


def test_record_check_fails_on_a_record_twice_without_customer_or_unknown(warehouse):
    _sql(warehouse,
         "INSERT INTO gold.customer_xref (customer_id, source, source_key, record_id) "
         "VALUES ('C4', 'shop', 'customer:1', 'shop|customer:1')",
         "UPDATE gold.customer_xref SET customer_id = NULL WHERE source_key = 'contact:9'",
         "INSERT INTO gold.customer_xref (customer_id, source, source_key, record_id) "
         "VALUES ('C4', 'pos', 'card:gone', 'pos|card:gone')")
    result = checks.xref_every_record_once(warehouse=warehouse)
    meta = _meta(result)
    assert not result.passed
    assert (meta["records_missing_from_xref"], meta["records_in_xref_more_than_once"],
            meta["xref_rows_without_customer_id"], meta["xref_rows_for_unknown_records"]) == (0, 1, 1, 1)


def test_record_check_passes_with_its_counts(warehouse):
    meta = _meta(checks.xref_every_record_once(warehouse=warehouse))
    assert meta == {"person_records": len(RECORDS), "records_missing_from_xref": 0, "missing_by_source": {},
                    "records_in_xref_more_than_once": 0, "xref_rows_without_customer_id": 0,
                    "xref_rows_for_unknown_records": 0}


# --- no oversized customer (warning) ---------------------------------------------------------------------


def test_size_check_passes_below_the_limit_and_names_the_largest(warehouse):
    result = checks.xref_no_oversized_customer(warehouse=warehouse)
    meta = _meta(result)
    assert result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert meta["limit"] == checks.MAX_RECORDS_PER_CUSTOMER and meta["customers_over_limit"] == 0
    assert meta["largest_customer_records"] == 2
    assert "| C1 | 2 | pos 1, shop 1 |" in meta["largest_customers"]


def test_size_check_warns_on_a_customer_over_the_limit_with_counts_only(warehouse):
    rows = ", ".join(f"('C5', 'call_center', 'contact:x{i}', 'call_center|contact:x{i}')"
                     for i in range(checks.MAX_RECORDS_PER_CUSTOMER))
    _sql(warehouse, f"INSERT INTO gold.customer_xref (customer_id, source, source_key, record_id) VALUES {rows}")
    result = checks.xref_no_oversized_customer(warehouse=warehouse)
    meta = _meta(result)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert meta["customers_over_limit"] == 1 and meta["largest_customer_records"] == checks.MAX_RECORDS_PER_CUSTOMER + 1
    first_row = meta["largest_customers"].splitlines()[2]
    assert first_row == f"| C5 | {checks.MAX_RECORDS_PER_CUSTOMER + 1} | call_center {checks.MAX_RECORDS_PER_CUSTOMER + 1} |"
    assert "contact:" not in meta["largest_customers"] and "Kim" not in meta["largest_customers"]


# --- households consistent ------------------------------------------------------------------------------------


def test_household_check_passes_and_counts_customers_without_household(warehouse):
    meta = _meta(checks.households_ids_consistent(warehouse=warehouse))
    assert meta["households"] == 2 and meta["customers_without_household"] == 1
    assert meta["customer_household_ids_not_in_households"] == 0 and meta["households_with_wrong_member_count"] == 0


def test_household_check_fails_on_an_id_that_points_nowhere(warehouse):
    _sql(warehouse, "UPDATE gold.golden_customers SET household_id = 'Hnowhere' WHERE customer_id = 'C4'")
    result = checks.households_ids_consistent(warehouse=warehouse)
    meta = _meta(result)
    assert not result.passed
    # Clara's household now has nobody, and her id resolves to no household
    assert meta["customer_household_ids_not_in_households"] == 1 and meta["households_without_members"] == 1


def test_household_check_fails_on_a_wrong_count_a_repeated_id_or_a_household_over_the_cap(warehouse):
    _sql(warehouse, "UPDATE gold.households SET members = members + 1 WHERE members = 1")
    meta = _meta(checks.households_ids_consistent(warehouse=warehouse))
    assert meta["households_with_wrong_member_count"] == 1
    _sql(warehouse, "UPDATE gold.households SET members = members - 1 WHERE members = 2",
         "INSERT INTO gold.households SELECT * FROM gold.households LIMIT 1")
    result = checks.households_ids_consistent(warehouse=warehouse)
    assert not result.passed and _meta(result)["duplicated_household_ids"] == 1
    cap = checks.households_consistent
    with wh.connect(warehouse.path, read_only=True) as con:
        assert _meta(cap(con, max_members=2))["households_over_cap"] >= 1


def test_household_ids_may_be_null(warehouse):
    _sql(warehouse, "UPDATE gold.golden_customers SET household_id = NULL WHERE customer_id = 'C4'",
         "DELETE FROM gold.households WHERE members = 1")
    assert checks.households_ids_consistent(warehouse=warehouse).passed


def test_a_check_fails_readably_when_its_tables_are_missing(tmp_path):
    resource = WarehouseResource(path=str(tmp_path / "empty.duckdb"))
    with wh.connect(resource.path):
        pass
    for check in ALL_CHECKS:
        result = check(warehouse=resource)
        assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
        assert "gold." in _meta(result)["missing_tables"]
