"""The golden customer table: one row per person, surviving values, consent, suppression and lineage."""

import datetime as dt

import dagster as dg

from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.identity.survivorship import build_golden
from customer_pipeline.warehouse import replace_table


@dg.asset(
    key=["gold", "golden_customers"], group_name="gold", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
    deps=[dg.AssetKey(["gold", "customer_xref"]), dg.AssetKey(["staging", "person_records"])],
    description="One row per resolved person with the best value of every attribute (docs/survivorship.md).",
)
def golden_customers(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with warehouse.connect() as con:
        records = con.execute("SELECT * FROM staging.person_records").df()
        xref = con.execute("SELECT * FROM gold.customer_xref").df()
    golden = build_golden(records, xref, now)
    with warehouse.connect() as con:
        replace_table(con, "gold.golden_customers", golden)
    preview = golden.drop(columns=[c for c in ("email", "phone", "street") if c in golden.columns]).head(5)
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(len(golden)),
        "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
    }
    for flag in ("email_suppressed", "do_not_call", "marketing_consent"):
        if flag in golden.columns:
            metadata[f"{flag}_count"] = dg.MetadataValue.int(int(golden[flag].fillna(False).astype(bool).sum()))
    if "data_quality_score" in golden.columns:
        metadata["mean_data_quality_score"] = dg.MetadataValue.float(round(float(golden["data_quality_score"].mean()), 3))
    context.log.info(f"{len(golden)} golden customers")
    return dg.MaterializeResult(metadata=metadata)
