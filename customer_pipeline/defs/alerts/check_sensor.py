"""Blocking-check alerts: a blocking check whose latest evaluation failed opens an incident; passing closes it."""

import dagster as dg

from customer_pipeline.alerts import rules
from customer_pipeline.defs.alerts.common import ALERT_INTERVAL_SECONDS, report, sensor_status
from customer_pipeline.defs.alerts.resources import AlertTargetsResource

def latest_blocking_evaluations(
    instance: dg.DagsterInstance, graph
) -> dict[tuple[str, str], tuple[str, bool, str | None]]:
    """(asset, check) -> (run id, failed with ERROR severity, description) of each blocking check's latest
    completed evaluation; checks never evaluated, planned or in progress are left out."""
    keys = [key for key in graph.asset_check_keys if graph.get_check_spec(key).blocking]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys) if keys else {}
    out = {}
    for key, record in latest.items():
        # planned (AssetCheckEvaluationPlanned): running now, or its run failed before the check ran (that is the
        # run alert's): no verdict either way
        evaluation = record.evaluation
        if not isinstance(evaluation, dg.AssetCheckEvaluation):
            continue
        failed = not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        out[(key.asset_key.to_user_string(), key.name)] = (record.run_id, failed, evaluation.description)
    return out


@dg.sensor(
    name="blocking_check_alert_sensor", minimum_interval_seconds=ALERT_INTERVAL_SECONDS,
    default_status=sensor_status(),
    description="Alerts once when a blocking asset check fails (assets below it wait), and when it passes again.",
)
def blocking_check_alert_sensor(context: dg.SensorEvaluationContext, alert_targets: AlertTargetsResource):
    latest = latest_blocking_evaluations(context.instance, context.repository_def.asset_graph)
    return report(context, rules.check_observations(latest), alert_targets)
