"""The data-quality report BI reads: one row per source, metric and field per run, kept as history."""

import datetime as dt

import dagster as dg

from customer_pipeline.charts import quality as quality_chart
from customer_pipeline.defs.conventions import AFTER_GOLDEN, picture, table_metadata
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.quality import report
from customer_pipeline.quality.suites import RAW_SUITES
from customer_pipeline.settings import Settings

PERSON_RECORDS_KEY = dg.AssetKey(["staging", "person_records"])
RAW_KEYS = [dg.AssetKey(["raw", table]) for table in RAW_SUITES]


@dg.asset(
    key=["gold", "data_quality_report"],
    op_tags=AFTER_GOLDEN,
    group_name="gold",
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
    deps=[PERSON_RECORDS_KEY, *RAW_KEYS],
    description=(
        "Completeness, validity, duplicates, quarantine, suppression and staleness per source; "
        "appended to gold.data_quality_report (runs older than CUSTOMER_PIPELINE_QUALITY_RETENTION_DAYS deleted), "
        "newest run in gold.data_quality_report_latest."
    ),
)
def data_quality_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    retention_days = Settings.from_env().quality_retention_days
    with warehouse.connect() as con:
        people, rejected, raw_counts = report.load_inputs(con, [s.table for s in RAW_SUITES.values()])
        metrics, markdown = report.build_report(people, rejected, raw_counts, now=now, run_id=context.run.run_id)
        runs_removed = report.write_report(con, metrics, retention_days=retention_days)
        headline = report.headline_figures(con)
        history_runs = con.execute(f"SELECT count(DISTINCT run_id) FROM {report.REPORT_TABLE}").fetchall()[0][0]
        shown = {**table_metadata(con, report.REPORT_TABLE), "trend_chart": picture(quality_chart.from_warehouse(con))}
    context.log.info("data quality: " + "; ".join(headline))
    if runs_removed:
        context.log.info(f"{runs_removed} report run(s) older than {retention_days} days deleted from the history")
    return dg.MaterializeResult(
        metadata={
            # the standard row-count key (dg.TableMetadataSet is not exported by dagster 1.13)
            "dagster/row_count": dg.MetadataValue.int(len(metrics)),
            "table": dg.MetadataValue.text(report.REPORT_TABLE),
            "runs_in_history": dg.MetadataValue.int(int(history_runs)),
            "retention_days": dg.MetadataValue.int(retention_days),
            "runs_removed_by_retention": dg.MetadataValue.int(runs_removed),
            "person_records": dg.MetadataValue.int(len(people)),
            "headline": dg.MetadataValue.md("\n".join(f"- {line}" for line in headline)),
            "report": dg.MetadataValue.md(markdown),
            **shown,
        }
    )
