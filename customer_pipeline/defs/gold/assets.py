"""The golden customer table and the households it mails to (docs/survivorship.md, docs/households.md)."""

import datetime as dt

import dagster as dg
import pandas as pd

from customer_pipeline.defs.automation.sensors import DOWNSTREAM_CONDITION
from customer_pipeline.defs.conventions import table_metadata
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.privacy import mask_frame
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.identity.households import MAX_MEMBERS, build_households, with_household_ids
from customer_pipeline.identity.survivorship import build_golden
from customer_pipeline.warehouse import table_exists, transaction

GOLDEN_KEY = dg.AssetKey(["gold", "golden_customers"])
HOUSEHOLDS_KEY = dg.AssetKey(["gold", "households"])
HOUSEHOLD_HISTORY_KEY = dg.AssetKey(["gold", "household_id_history"])
PERSON_RECORDS_KEY = dg.AssetKey(["staging", "person_records"])

HOUSEHOLD_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("household_id", "text", description="stable opaque id (H + 16 hex), kept across runs"),
    dg.TableColumn("address", "text", description="street as most members write it"),
    dg.TableColumn("postcode", "text"),
    dg.TableColumn("city", "text"),
    dg.TableColumn("country", "text", description="ISO 3166-1 alpha-2"),
    dg.TableColumn("members", "bigint", description="golden customers with this household_id"),
    dg.TableColumn("landline", "text", description="the household's fixed-line number (E.164), if any"),
    dg.TableColumn("first_seen", "timestamp", description="earliest record of any member"),
    dg.TableColumn("last_seen", "timestamp", description="latest record of any member"),
])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _previous(con) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Last run's (customer_id, household_id) and gold.households: the memory household ids are kept by."""
    customers = None
    if table_exists(con, "gold.golden_customers"):
        columns = {r[0] for r in con.execute("DESCRIBE gold.golden_customers").fetchall()}
        if "household_id" in columns:
            customers = con.execute("SELECT customer_id, household_id FROM gold.golden_customers").df()
    households = con.execute("SELECT * FROM gold.households").df() if table_exists(con, "gold.households") else None
    return customers, households


def _write(con, golden: pd.DataFrame, households: pd.DataFrame, history: pd.DataFrame) -> int:
    """Both tables swapped and the id changes appended in one transaction: household_id always resolves."""
    with transaction(con):
        for table, frame in (("gold.golden_customers", golden), ("gold.households", households)):
            con.register("_frame", frame)
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _frame")
            con.unregister("_frame")
        con.register("_history", history)
        con.execute("CREATE TABLE IF NOT EXISTS gold.household_id_history AS SELECT * FROM _history WHERE false")
        con.execute("INSERT INTO gold.household_id_history SELECT * FROM _history")
        con.unregister("_history")
    return con.execute("SELECT count(*) FROM gold.household_id_history").fetchall()[0][0]


def _golden_metadata(golden: pd.DataFrame) -> dict:
    preview = golden.drop(columns=[c for c in ("email", "phone", "street") if c in golden.columns]).head(5)
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(len(golden)),
        "preview": dg.MetadataValue.md(mask_frame(preview).to_markdown(index=False)),
        "customers_with_household": dg.MetadataValue.int(int(golden["household_id"].notna().sum())),
    }
    for flag in ("email_suppressed", "do_not_call", "marketing_consent"):
        if flag in golden.columns:
            metadata[f"{flag}_count"] = dg.MetadataValue.int(int(golden[flag].fillna(False).astype(bool).sum()))
    if "data_quality_score" in golden.columns:
        metadata["mean_data_quality_score"] = dg.MetadataValue.float(round(float(golden["data_quality_score"].mean()), 3))
    return metadata


def _households_metadata(result, customers: int) -> dict:
    hh = result.households
    sizes = hh["members"].value_counts().sort_index()
    histogram = "\n".join(["| members | households |", "| ---: | ---: |"]
                          + [f"| {int(k)} | {int(v):,} |" for k, v in sizes.items()])
    largest = hh.sort_values(["members", "household_id"], ascending=[False, True]).head(1)
    without = int(result.customers["household_id"].isna().sum())
    basis = result.customers["basis"].value_counts().to_dict()
    return {
        "dagster/row_count": dg.MetadataValue.int(len(hh)),
        "dagster/column_schema": HOUSEHOLD_SCHEMA,
        "members_histogram": dg.MetadataValue.md(histogram),
        "largest_household": dg.MetadataValue.int(int(largest["members"].iloc[0]) if len(largest) else 0),
        "largest_household_id": dg.MetadataValue.text(str(largest["household_id"].iloc[0]) if len(largest) else "none"),
        "customers_without_household": dg.MetadataValue.int(without),
        "customers_without_household_share": dg.MetadataValue.float(round(without / customers, 4) if customers else 0.0),
        # address: placed by their street; phone: no street, joined through a shared number;
        # over_cap: their address holds more customers than max_members; no_address: no usable street
        "customers_by_basis": dg.MetadataValue.json({str(k): int(v) for k, v in basis.items()}),
        "addresses_over_cap": dg.MetadataValue.int(len(result.over_cap)),
        "customers_at_addresses_over_cap": dg.MetadataValue.int(int(result.over_cap["customers"].sum())),
        "max_members": dg.MetadataValue.int(MAX_MEMBERS),
        "preview": dg.MetadataValue.md(hh.drop(columns=["address", "landline"]).head(5).to_markdown(index=False)),
    }


# Rebuilt when the xref moves, never on new person records alone: until identity has run on them, the
# xref is older than the records and the golden table would mix new records with old identities.
FOLLOWS_XREF = DOWNSTREAM_CONDITION.ignore(dg.AssetSelection.assets(PERSON_RECORDS_KEY)).with_label(
    "eager after the xref, blocking checks passed")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(GOLDEN_KEY, group_name="gold", kinds={"duckdb"},
                     deps=[dg.AssetKey(["gold", "customer_xref"]), PERSON_RECORDS_KEY],
                     automation_condition=FOLLOWS_XREF,
                     description="One row per resolved person with the best value of every attribute and its "
                                 "household_id (docs/survivorship.md)."),
        dg.AssetSpec(HOUSEHOLDS_KEY, group_name="gold", kinds={"duckdb"}, deps=[GOLDEN_KEY],
                     description="Customers living at one address, the unit database marketing mails "
                                 "(docs/households.md)."),
        dg.AssetSpec(HOUSEHOLD_HISTORY_KEY, group_name="gold", kinds={"duckdb"}, deps=[HOUSEHOLDS_KEY],
                     description="Merged, split and removed household ids, so BI can redirect old ids."),
    ],
    name="golden_customers", pool=WAREHOUSE_POOL,
)
def golden_customers(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    now = _now()
    with warehouse.connect() as con:
        records = con.execute("SELECT * FROM staging.person_records").df()
        xref = con.execute("SELECT * FROM gold.customer_xref").df()
        previous_customers, previous_households = _previous(con)
    golden = build_golden(records, xref, now)
    result = build_households(golden, records, xref, now, previous_customers, previous_households)
    golden = with_household_ids(golden, result.customers)
    with warehouse.connect() as con:
        history_total = _write(con, golden, result.households, result.history)
        tables = {t: table_metadata(con, t) for t in ("gold.golden_customers", "gold.household_id_history")}
    changes = result.history.groupby("reason").size().to_dict() if len(result.history) else {}
    context.log.info(f"{len(golden)} golden customers in {len(result.households)} households; "
                     f"household id changes this run {changes}")
    yield dg.MaterializeResult(asset_key=GOLDEN_KEY,
                               metadata={**_golden_metadata(golden), **tables["gold.golden_customers"]})
    yield dg.MaterializeResult(asset_key=HOUSEHOLDS_KEY, metadata=_households_metadata(result, len(golden)))
    yield dg.MaterializeResult(asset_key=HOUSEHOLD_HISTORY_KEY, metadata={
        "dagster/row_count": dg.MetadataValue.int(int(history_total)),
        **tables["gold.household_id_history"],
        "changes_this_run": dg.MetadataValue.json({str(k): int(v) for k, v in changes.items()}),
    })
