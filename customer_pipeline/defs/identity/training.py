"""Retraining the Splink model: a deliberate act by a data engineer (job `retrain_identity_model`)."""

import dagster as dg

from customer_pipeline.defs.identity import settings
from customer_pipeline.defs.identity.assets import MODEL_KEY
from customer_pipeline.defs.identity.charts import chart_metadata
from customer_pipeline.defs.jobs import WAREHOUSE_TAGS
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.identity import linking


@dg.asset(
    key=MODEL_KEY, group_name="identity", kinds={"splink", "json"}, tags={"automation": "manual"},
    deps=[dg.AssetKey(["staging", "person_records"])],
    description="The Splink model (JSON in the repo), trained without labels; charts to inspect it in a browser.",
)
def splink_model(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect(read_only=True) as con:
        records = con.execute("SELECT * FROM staging.person_records").df()
    path = settings.model_path()
    summary = linking.train(records, path)
    charts = linking.write_charts(records, path, settings.charts_dir(),
                                  settings.accept_weight(), settings.review_low_weight())
    context.log.info(f"model trained on {len(records)} records, saved to {path}")
    meta = {
        "model_path": dg.MetadataValue.path(str(path)),
        "records": dg.MetadataValue.int(len(records)),
        **chart_metadata(charts),
    }
    if isinstance(summary, dict):
        meta["training"] = dg.MetadataValue.json({k: v for k, v in summary.items() if isinstance(v, (int, float, str))})
    return dg.MaterializeResult(metadata=meta)


retrain_identity_model = dg.define_asset_job(
    "retrain_identity_model", selection=[MODEL_KEY], tags=WAREHOUSE_TAGS,
    description="Retrain the Splink model on the current staging records and write its charts (run on purpose).",
)
