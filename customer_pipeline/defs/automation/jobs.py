"""One job per source: that source's raw assets and their checks, queued on the warehouse tag."""

import dagster as dg

from customer_pipeline.defs.jobs import WAREHOUSE_TAGS
from customer_pipeline.ingest.shop import SHOP_TABLES

SOURCE_ASSETS: dict[str, list[dg.AssetKey]] = {
    "pos": [dg.AssetKey(["raw", "pos_loyalty_signups"]), dg.AssetKey(["raw", "pos_transactions"])],
    "shop": [dg.AssetKey(["raw", f"shop_{table}"]) for table in SHOP_TABLES],
    "call_center": [dg.AssetKey(["raw", "call_center_contacts"])],
    "app": [dg.AssetKey(["raw", "app_events"])],
    "suppression": [dg.AssetKey(["raw", "suppression_entries"])],  # preference registers (optional)
}

# A run that dies outside the assets (run worker lost, instance restart) is relaunched up to twice; a failing
# asset or check is not (the shop's transient errors are retried at step level by its RetryPolicy with backoff,
# a failed blocking check would fail again). Needs `run_retries: enabled: true` in dagster.yaml.
RUN_RETRY_TAGS = {"dagster/max_retries": "2", "dagster/retry_on_asset_or_op_failure": "false"}


def source_job(source: str):
    return dg.define_asset_job(
        f"{source}_job",
        selection=dg.AssetSelection.assets(*SOURCE_ASSETS[source]),
        tags={**WAREHOUSE_TAGS, **RUN_RETRY_TAGS, "source": source},
        description=f"Load what the {source} source delivered into the raw layer, with its checks.",
    )


SOURCE_JOBS = {source: source_job(source) for source in SOURCE_ASSETS}
pos_job = SOURCE_JOBS["pos"]
shop_job = SOURCE_JOBS["shop"]
call_center_job = SOURCE_JOBS["call_center"]
app_job = SOURCE_JOBS["app"]
suppression_job = SOURCE_JOBS["suppression"]
