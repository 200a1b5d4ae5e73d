"""POS file drops: loyalty signups and receipt lines, loaded incrementally from the landing folder."""

from pathlib import Path

import dagster as dg

from customer_pipeline.defs.resources import SourcesResource, WarehouseResource
from customer_pipeline.defs.sources.metadata import table_metadata
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL, freshness
from customer_pipeline.ingest.files import load_csv_family
from customer_pipeline.ingest.formats import POS_LOYALTY, POS_TRANSACTIONS


@dg.asset(
    key=["raw", "pos_loyalty_signups"], group_name="raw", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
    freshness_policy=freshness("pos"), description="Loyalty-card questionnaires from the store checkouts.",
)
def pos_loyalty_signups(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, sources: SourcesResource
) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        # stray files in pos/ that match no POS family are quarantined here, once
        stats = load_csv_family(con, Path(sources.landing_dir), POS_LOYALTY, context.run.run_id, claim_unknown=True)
        meta = table_metadata(con, "raw.pos_loyalty_signups", stats.as_metadata())
    context.log.info(f"pos loyalty signups: {stats.as_metadata()}")
    return dg.MaterializeResult(metadata=meta)


@dg.asset(
    key=["raw", "pos_transactions"], group_name="raw", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
    freshness_policy=freshness("pos"), description="Receipt lines from the store tills (card_no links a sale to a card).",
)
def pos_transactions(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, sources: SourcesResource
) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        stats = load_csv_family(con, Path(sources.landing_dir), POS_TRANSACTIONS, context.run.run_id)
        meta = table_metadata(con, "raw.pos_transactions", stats.as_metadata())
    context.log.info(f"pos transactions: {stats.as_metadata()}")
    return dg.MaterializeResult(metadata=meta)
