"""`gold.source_freshness`: is every source delivering on time? One row per source, rewritten each run."""

import dagster as dg

from customer_pipeline import freshness
from customer_pipeline.charts import freshness as freshness_chart
from customer_pipeline.defs.conventions import AFTER_GOLDEN, picture, table_metadata
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.defs.sources.sla import SLA, WAREHOUSE_POOL
from customer_pipeline.defs.staging.assets import RAW_DEPS

SOURCE_FRESHNESS_KEY = dg.AssetKey(["gold", "source_freshness"])
SOURCES_WITHIN_SLA = "sources_within_sla"
# re-measured on this cadence even when no source delivers: that is how a late source turns warning/failed
REMEASURE_CRON = "*/15 * * * *"


def slas() -> dict[str, freshness.Sla]:
    return {source: freshness.Sla(warn=s["warn"], fail=s["fail"]) for source, s in SLA.items()}


# Runs after any source load (also a failed-check one: freshness is about delivery, not content) and every
# 15 minutes; unlike eager() it does not wait for a missing source, which it reports as never_loaded.
AUTOMATION = (
    (
        dg.AutomationCondition.newly_missing()
        | dg.AutomationCondition.any_deps_updated()
        | dg.AutomationCondition.cron_tick_passed(REMEASURE_CRON)
    ).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after_any_load_or_every_15_minutes")


@dg.asset(
    key=SOURCE_FRESHNESS_KEY, group_name="gold", kinds={"duckdb"}, pool=WAREHOUSE_POOL, deps=RAW_DEPS,
    op_tags=AFTER_GOLDEN,
    automation_condition=AUTOMATION,
    check_specs=[dg.AssetCheckSpec(SOURCES_WITHIN_SLA, asset=SOURCE_FRESHNESS_KEY,
                                   description="Every source delivered within its fail window (warns only).")],
    description="Per source: last successful load and its lag, newest business timestamp and its age, each with its "
    "own SLA status; history appended.",
)
def source_freshness(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    with warehouse.connect() as con:
        measured = freshness.measure(con, slas())
        df = freshness.write(con, measured)
        history = con.execute(f"SELECT count(*) FROM {freshness.HISTORY_TABLE}").fetchall()[0][0]
        shown = {**table_metadata(con, freshness.TABLE), "lag_chart": picture(freshness_chart.from_warehouse(con))}
    statuses = {m.source: m.status for m in measured}
    record_statuses = {m.source: m.record_status for m in measured}
    late = sorted(s for s, st in statuses.items() if st in (freshness.FAILED, freshness.NEVER_LOADED))
    context.log.info(f"source freshness: load {statuses}; newest record {record_statuses}")
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(len(df)),
            "dagster/table_name": dg.MetadataValue.text(freshness.TABLE),
            "history_rows": dg.MetadataValue.int(int(history)),
            "status": dg.MetadataValue.json(statuses),  # the load status, as the check judges it
            "record_status": dg.MetadataValue.json(record_statuses),
            "preview": dg.MetadataValue.md(freshness.preview_markdown(df)),
            **shown,
        }
    )
    yield dg.AssetCheckResult(
        check_name=SOURCES_WITHIN_SLA, passed=not late, severity=dg.AssetCheckSeverity.WARN,
        metadata={"late_sources": dg.MetadataValue.text(", ".join(late) or "none")},
    )
