"""The deployment's Splink model: trained on the warehouse's own records on its first run, retrained on purpose."""

import dagster as dg

from customer_pipeline.defs.automation.sensors import WHEN_MISSING
from customer_pipeline.defs.conventions import table_metadata
from customer_pipeline.defs.identity import settings
from customer_pipeline.defs.identity.assets import MODEL_KEY, model_metadata
from customer_pipeline.defs.identity.charts import chart_metadata, draw_charts
from customer_pipeline.defs.jobs import WAREHOUSE_TAGS
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.identity import model_store
from customer_pipeline.warehouse import read_df


class ModelConfig(dg.Config):
    retrain: bool = False  # job retrain_identity_model sets it; otherwise the model is trained only when missing


@dg.asset(
    key=MODEL_KEY, group_name="identity", kinds={"splink", "duckdb"}, pool=WAREHOUSE_POOL,
    deps=[dg.AssetKey(["staging", "person_records"])],
    # Trained when the warehouse has none (the first run), never retrained by automation.
    automation_condition=WHEN_MISSING.with_label("trained when missing, blocking checks passed"),
    description="The Splink model of this warehouse (versions in identity.splink_models), trained without labels "
    "on its own person records; says when today's records have drifted from what it learnt.",
)
def splink_model(context: dg.AssetExecutionContext, config: ModelConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        records = read_df(con, "SELECT * FROM staging.person_records")
        version, trained = model_store.load_or_train(con, records, pinned_path=settings.pinned_model_path(),
                                                     retrain=config.retrain)
        models_table = table_metadata(con, "identity.splink_models")
    meta = {**model_metadata(version, model_store.fingerprint(records)), **models_table}
    # a retrain redraws the charts here (its job runs this asset alone); on a first run identity/model_charts,
    # missing too, draws them once
    if trained and config.retrain:
        charts = draw_charts(records, version)
        meta.update(chart_metadata(charts))
    if trained:
        context.log.info(f"identity model version {version.version} trained on {len(records)} records")
    else:
        context.log.info(f"identity model version {version.version} in use ({version.source}); not retrained")
    meta["trained_this_run"] = dg.MetadataValue.bool(trained)
    return dg.MaterializeResult(metadata=meta)


retrain_identity_model = dg.define_asset_job(
    "retrain_identity_model", selection=[MODEL_KEY], tags=WAREHOUSE_TAGS,
    config={"ops": {"identity__splink_model": {"config": {"retrain": True}}}},
    description="Retrain the Splink model on the current staging records (a new version) and draw its charts.",
)
