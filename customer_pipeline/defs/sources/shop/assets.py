"""The web shop's database, extracted incrementally by `updated_at` into one raw table per shop table."""

import dagster as dg

from customer_pipeline.defs.resources import SourcesResource, WarehouseResource
from customer_pipeline.defs.sources.metadata import table_metadata
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL, freshness
from customer_pipeline.ingest.shop import SHOP_TABLES, SourceError, SourceUnavailable, extract_shop


def _shop_specs() -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            key=["raw", f"shop_{name}"], group_name="raw", kinds={"duckdb"}, freshness_policy=freshness("shop"),
            description=f"Shop table `{name}`, current version of every row.",
        )
        for name in SHOP_TABLES
    ]


@dg.multi_asset(
    specs=_shop_specs(), name="shop_database", pool=WAREHOUSE_POOL,
    retry_policy=dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL),
)
def shop_database(context: dg.AssetExecutionContext, warehouse: WarehouseResource, sources: SourcesResource):
    with warehouse.connect() as con:
        try:
            stats = extract_shop(con, sources.shop_db_url, context.run_id)
        except SourceError as exc:
            # refused or timed out is worth the retry policy; a bad URL, credential or missing table is not
            raise dg.Failure(description=str(exc), allow_retries=isinstance(exc, SourceUnavailable)) from exc
        for name, st in stats.items():
            load = {k: v for k, v in st.__dict__.items() if isinstance(v, int)}
            meta = table_metadata(con, f"raw.shop_{name}", load)
            meta["watermark"] = dg.MetadataValue.text(str(st.watermark_to))
            yield dg.MaterializeResult(asset_key=["raw", f"shop_{name}"], metadata=meta)
