"""Staging of the preference registers: the snapshot in force per register, values standardised for matching."""

import dagster as dg

from customer_pipeline.defs.automation.sensors import DOWNSTREAM_CONDITION
from customer_pipeline.defs.conventions import AFTER_GOLDEN, table_metadata
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.staging.suppression import build_suppression_entries, register_summary

SUPPRESSION_STAGING_KEY = dg.AssetKey(["staging", "suppression_entries"])


@dg.asset(
    key=SUPPRESSION_STAGING_KEY, group_name="staging", kinds={"duckdb", "pandas"}, pool=WAREHOUSE_POOL,
    op_tags=AFTER_GOLDEN,
    deps=[dg.AssetKey(["raw", "suppression_entries"])], automation_condition=DOWNSTREAM_CONDITION,
    description="The current snapshot of every preference register (the newest file of a register replaces the "
                "older ones), phones in E.164, emails and postal lines normalised as for person records.",
)
def suppression_entries_staged(warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        counts = build_suppression_entries(con)
        registers = register_summary(con)
        columns = table_metadata(con, "staging.suppression_entries")
    table = "\n".join(["| register | snapshot | kind | entries | matchable |", "| --- | --- | --- | ---: | ---: |"]
                      + [f"| {r} | {d} | {k} | {n:,} | {m:,} |" for r, d, k, n, m in registers])
    return dg.MaterializeResult(metadata={
        "dagster/row_count": dg.MetadataValue.int(counts["rows"]),
        **columns,
        **{k: dg.MetadataValue.int(v) for k, v in counts.items() if k != "rows"},
        # register names, dates and counts only: no listed value reaches the event log
        "registers_in_force": dg.MetadataValue.md(table if registers else "_no register delivered_"),
    })
