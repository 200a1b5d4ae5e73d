"""Freshness alerts: a source past its fail window (or never loaded) opens an incident; fresh again closes it."""

from pathlib import Path

import dagster as dg
import duckdb

from customer_pipeline import freshness
from customer_pipeline.alerts import incidents, rules
from customer_pipeline.defs.alerts.common import ALERT_INTERVAL_SECONDS, report, sensor_status
from customer_pipeline.defs.alerts.resources import AlertTargetsResource
from customer_pipeline.defs.freshness.assets import slas
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.warehouse import connect as connect_warehouse

# a tick does not wait long for a run that is writing the warehouse: the next tick measures instead
LOCK_WAIT_SECONDS = 10


@dg.sensor(
    name="freshness_alert_sensor", minimum_interval_seconds=ALERT_INTERVAL_SECONDS, default_status=sensor_status(),
    description="Alerts once when a source is past its freshness SLA (fail window) or never loaded, and when it "
    "is fresh again; measured on the warehouse at each tick, like gold.source_freshness.",
)
def freshness_alert_sensor(
    context: dg.SensorEvaluationContext, alert_targets: AlertTargetsResource, warehouse: WarehouseResource
):
    # measured here rather than read from gold.source_freshness: a late source must alert even when the
    # automation that re-measures it every 15 minutes is not running
    state = incidents.load_cursor(context.cursor)
    if not Path(warehouse.path).is_file():
        return dg.SensorResult(skip_reason="no warehouse yet: nothing to measure", cursor=incidents.dump_cursor(state))
    try:
        with connect_warehouse(warehouse.path, read_only=True, wait=LOCK_WAIT_SECONDS) as con:
            measured = freshness.measure(con, slas())
    except duckdb.IOException as exc:
        context.log.info(f"warehouse busy, measured next tick: {exc}")
        return dg.SensorResult(skip_reason="warehouse locked by a run: measured next tick",
                               cursor=incidents.dump_cursor(state))
    observations = rules.freshness_observations(measured, watching_since=state.watching_since)
    return report(context, observations, alert_targets, state)
