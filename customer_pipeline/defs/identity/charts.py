"""Charts of the Splink model in use, on the current records: linked from the asset in the UI."""

from pathlib import Path

import dagster as dg

from customer_pipeline.defs.automation.sensors import WHEN_MISSING
from customer_pipeline.defs.conventions import AFTER_GOLDEN
from customer_pipeline.defs.identity import settings
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.identity import linking, model_store
from customer_pipeline.identity.charts import CHART_FILES, sample_for_charts
from customer_pipeline.warehouse import read_df

CHARTS_KEY = dg.AssetKey(["identity", "model_charts"])
DRAWN_MARKER = "model_version.txt"  # the model version the charts in the folder show


class ChartsConfig(dg.Config):
    redraw: bool = False  # draw again although the charts of the current model exist (e.g. on today's records)


def draw_charts(records, version: model_store.ModelVersion) -> dict:
    """Draw the model's charts into the warehouse's chart folder and note which model version they show."""
    out_dir = Path(settings.charts_dir())
    charts = linking.write_charts(records, version.model, out_dir, settings.accept_weight(), settings.review_low_weight())
    (out_dir / DRAWN_MARKER).write_text(str(version.version))
    return charts


def chart_metadata(charts: dict) -> dict:
    """Links to the HTML files (file:// URLs, and the paths to copy when a browser refuses them)."""
    meta = {"charts": dg.MetadataValue.md("\n".join(f"- [{name}](file://{p}) `{p}`" for name, p in charts.items()))}
    meta.update({f"chart_{name}": dg.MetadataValue.url(f"file://{p}") for name, p in charts.items()})
    return meta


@dg.asset(
    key=CHARTS_KEY, group_name="identity", kinds={"splink", "html"}, pool=WAREHOUSE_POOL,
    op_tags=AFTER_GOLDEN,
    deps=[dg.AssetKey(["identity", "links"])],
    # Drawn once when missing; retraining (job retrain_identity_model) redraws them with the new
    # model, and a data engineer can materialise this asset any time to redraw on today's records.
    automation_condition=WHEN_MISSING.with_label("when missing, blocking checks passed"),
    # a run of the whole graph does not redraw charts of a model already drawn: no materialisation then
    output_required=False,
    description="The Splink model in use, in the browser: match weights, m/u parameters, a comparison viewer "
    "and a cluster studio dashboard (offline HTML files, linked in the metadata).",
)
def model_charts(context: dg.AssetExecutionContext, config: ChartsConfig, warehouse: WarehouseResource):
    out_dir = Path(settings.charts_dir())
    with warehouse.connect() as con:
        current = model_store.latest(con)
        if (current and not config.redraw and (out_dir / DRAWN_MARKER).is_file()
                and (out_dir / DRAWN_MARKER).read_text().strip() == str(current.version)
                and all((out_dir / f).is_file() for f in CHART_FILES.values())):
            if context.instance.get_latest_materialization_event(CHARTS_KEY) is None:
                # drawn before this Dagster instance knew the asset (a new instance, a copied warehouse):
                # recorded as it is, else the asset stays missing and automation asks for it on every tick
                context.log.info(f"charts of model version {current.version} are in {out_dir} already: recorded "
                                 "as this asset's materialisation, not redrawn")
                yield dg.MaterializeResult(metadata={
                    **chart_metadata({name: out_dir / f for name, f in CHART_FILES.items()}),
                    "model_version": dg.MetadataValue.int(current.version),
                    "redrawn": dg.MetadataValue.bool(False),
                })
                return
            context.log.info(f"charts of model version {current.version} are drawn already (in {out_dir}): not "
                             "redrawn, no new materialisation (config redraw: true redraws them)")
            return
        records = read_df(con, "SELECT * FROM staging.person_records")
        version, _ = model_store.load_or_train(con, records, pinned_path=settings.pinned_model_path())
    charts = draw_charts(records, version)
    context.log.info(f"charts of model version {version.version} written to {out_dir}")
    yield dg.MaterializeResult(metadata={
        **chart_metadata(charts),
        "model_version": dg.MetadataValue.int(version.version),
        "records": dg.MetadataValue.int(len(records)),
        "records_in_dashboards": dg.MetadataValue.int(len(sample_for_charts(records))),
    })
