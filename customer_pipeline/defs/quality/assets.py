"""The data-quality report BI reads: one row per source, metric and field per run, kept as history."""

import datetime as dt

import dagster as dg

from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.quality import report
from customer_pipeline.quality.suites import RAW_SUITES

PERSON_RECORDS_KEY = dg.AssetKey(["staging", "person_records"])
RAW_KEYS = [dg.AssetKey(["raw", table]) for table in RAW_SUITES]


@dg.asset(
    key=["gold", "data_quality_report"],
    group_name="gold",
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
    deps=[PERSON_RECORDS_KEY, *RAW_KEYS],
    description=(
        "Completeness, validity, duplicates, quarantine, suppression and staleness per source; "
        "appended to gold.data_quality_report, newest run in gold.data_quality_report_latest."
    ),
)
def data_quality_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with warehouse.connect() as con:
        people, rejected, raw_counts = report.load_inputs(con, [s.table for s in RAW_SUITES.values()])
        metrics, markdown = report.build_report(people, rejected, raw_counts, now=now, run_id=context.run.run_id)
        report.write_report(con, metrics)
        headline = report.headline_figures(con)
        history_runs = con.execute(f"SELECT count(DISTINCT run_id) FROM {report.REPORT_TABLE}").fetchall()[0][0]
    context.log.info("data quality: " + "; ".join(headline))
    return dg.MaterializeResult(
        metadata={
            # the standard row-count key (dg.TableMetadataSet is not exported by dagster 1.13)
            "dagster/row_count": dg.MetadataValue.int(len(metrics)),
            "table": dg.MetadataValue.text(report.REPORT_TABLE),
            "runs_in_history": dg.MetadataValue.int(int(history_runs)),
            "person_records": dg.MetadataValue.int(len(people)),
            "headline": dg.MetadataValue.md("\n".join(f"- {line}" for line in headline)),
            "report": dg.MetadataValue.md(markdown),
        }
    )
