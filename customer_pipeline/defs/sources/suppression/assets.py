"""Preference registers (do-not-call, mail preference, email opt-out) dropped in `suppression/` of the landing
folder."""

from pathlib import Path

import dagster as dg

from customer_pipeline.defs.resources import SourcesResource, WarehouseResource
from customer_pipeline.defs.sources.metadata import table_metadata
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.ingest.suppression import load_suppression_registers

SUPPRESSION_RAW_KEY = dg.AssetKey(["raw", "suppression_entries"])


# no freshness policy: registers are optional and arrive when their publisher releases a snapshot
@dg.asset(
    key=SUPPRESSION_RAW_KEY, group_name="raw", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
    description="Every row of every register snapshot delivered (`<register>_<date>.csv`); the current snapshot "
                "per register is staging/suppression_entries.",
)
def suppression_entries(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, sources: SourcesResource
) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        stats = load_suppression_registers(con, Path(sources.landing_dir), context.run.run_id)
        meta = table_metadata(con, "raw.suppression_entries", stats.as_metadata())
    context.log.info(f"suppression registers: {stats.as_metadata()}")
    return dg.MaterializeResult(metadata=meta)
