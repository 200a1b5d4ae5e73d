"""App events (Segment spec): every message once, plus identify traits and alias links for identity."""

from pathlib import Path

import dagster as dg

from customer_pipeline.defs.quality.gx_factory import full_refresh_asked
from customer_pipeline.defs.resources import SourcesResource, WarehouseResource
from customer_pipeline.defs.sources.metadata import table_metadata
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL, freshness
from customer_pipeline.ingest.files import load_app_events, rebuild_app_identities
from customer_pipeline.warehouse import table_exists


@dg.asset(
    key=["raw", "app_events"], group_name="raw", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
    freshness_policy=freshness("app"),
    description="Mobile-app events deduplicated by messageId; raw.app_identifies and raw.app_aliases derive from them.",
)
def app_events(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, sources: SourcesResource
) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        stats = load_app_events(con, Path(sources.landing_dir), context.run.run_id)
        # derived from the app events: brought up to date when a file was loaded, replaced or quarantined (whole on --full)
        whole = full_refresh_asked(context)
        if stats.files_loaded or stats.files_replaced or stats.files_quarantined or whole \
                or not all(table_exists(con, t) for t in ("raw.app_identifies", "raw.app_aliases")):
            derived = rebuild_app_identities(con, whole=whole)
        else:
            derived = {name: con.execute(f"SELECT count(*) FROM raw.app_{name}").fetchall()[0][0]
                       for name in ("identifies", "aliases")}
        meta = table_metadata(con, "raw.app_events", {**stats.as_metadata(), **derived})
    context.log.info(f"app events: {stats.as_metadata()} {derived}")
    return dg.MaterializeResult(metadata=meta)
