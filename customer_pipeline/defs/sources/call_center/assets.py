"""Call-center contact exports, loaded incrementally from the landing folder."""

from pathlib import Path

import dagster as dg

from customer_pipeline.defs.resources import SourcesResource, WarehouseResource
from customer_pipeline.defs.sources.metadata import table_metadata
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL, freshness
from customer_pipeline.ingest.files import load_csv_family
from customer_pipeline.ingest.formats import CALL_CENTER


@dg.asset(
    key=["raw", "call_center_contacts"], group_name="raw", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
    freshness_policy=freshness("call_center"), description="Contacts logged by call-center agents.",
)
def call_center_contacts(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, sources: SourcesResource
) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        stats = load_csv_family(con, Path(sources.landing_dir), CALL_CENTER, context.run.run_id, claim_unknown=True)
        meta = table_metadata(con, "raw.call_center_contacts", stats.as_metadata())
    context.log.info(f"call center contacts: {stats.as_metadata()}")
    return dg.MaterializeResult(metadata=meta)
