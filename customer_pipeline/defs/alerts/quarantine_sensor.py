"""Quarantine-spike alerts: a source's latest load quarantining more than the threshold opens an incident; a
later load with rows under it closes it."""

import dagster as dg

from customer_pipeline.alerts import rules
from customer_pipeline.defs.alerts.common import ALERT_INTERVAL_SECONDS, report, sensor_status
from customer_pipeline.defs.alerts.resources import AlertTargetsResource
from customer_pipeline.defs.automation.jobs import SOURCE_ASSETS


def _count(entry, name: str) -> int:
    value = entry.asset_materialization.metadata.get(name)
    return int(value.value) if value is not None and isinstance(value.value, (int, float)) else 0


def latest_loads(
    instance: dg.DagsterInstance, sources: dict[str, list[dg.AssetKey]] = SOURCE_ASSETS
) -> list[rules.SourceLoad]:
    """Per source, the rows read and quarantined by its newest run, over that run's materialisations of the
    source's raw assets (their `rows_read` / `rows_quarantined` metadata)."""
    latest = instance.get_latest_materialization_events([key for keys in sources.values() for key in keys])
    loads = []
    for source, keys in sources.items():
        entries = [latest[key] for key in keys if latest.get(key) is not None]
        if not entries:
            continue
        run_id = max(entries, key=lambda e: e.timestamp).run_id
        mine = [e for e in entries if e.run_id == run_id]
        loads.append(rules.SourceLoad(source, run_id, sum(_count(e, "rows_read") for e in mine),
                                      sum(_count(e, "rows_quarantined") for e in mine)))
    return loads


@dg.sensor(
    name="quarantine_alert_sensor", minimum_interval_seconds=ALERT_INTERVAL_SECONDS, default_status=sensor_status(),
    description=f"Alerts once when a source's load sends more than {rules.QUARANTINE_SPIKE_SHARE:.0%} of the rows "
    f"it read (and at least {rules.QUARANTINE_SPIKE_MIN_ROWS}) to quarantine, and when a later load is back under it.",
)
def quarantine_alert_sensor(context: dg.SensorEvaluationContext, alert_targets: AlertTargetsResource):
    return report(context, rules.quarantine_observations(latest_loads(context.instance)), alert_targets)
