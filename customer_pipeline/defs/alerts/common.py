"""What every alert sensor shares: its start state, and turning observations into alerts once per incident."""

import dagster as dg

from customer_pipeline.alerts import incidents
from customer_pipeline.alerts.delivery import deliver
from customer_pipeline.defs.alerts.resources import AlertTargetsResource
from customer_pipeline.defs.automation.schedules import default_status

# how often the condition sensors look (run-status sensors react to each run event on their own cadence)
ALERT_INTERVAL_SECONDS = 60


def sensor_status() -> dg.DefaultSensorStatus:
    """RUNNING like every other sensor; CUSTOMER_PIPELINE_AUTOMATION=stopped starts them paused."""
    running = default_status() == dg.DefaultScheduleStatus.RUNNING
    return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED


def report(
    context: dg.SensorEvaluationContext, observations: list[incidents.Observation], alert_targets: AlertTargetsResource,
    state: incidents.CursorState | None = None,
) -> dg.SensorResult:
    """Send what opened or closed since the last tick; the open incidents stay in the cursor."""
    state = state or incidents.load_cursor(context.cursor)
    to_send, still_open = incidents.reconcile(state.open, observations)
    targets = alert_targets.targets()
    for alert in to_send:
        deliver(alert, targets, context.log)
    summary = (f"{len(to_send)} alert(s) sent to {targets.describe()}: " + "; ".join(
        f"{a.state} {a.title}" for a in to_send)) if to_send else "nothing opened or closed"
    return dg.SensorResult(skip_reason=f"{summary} ({len(still_open)} incident(s) open)",
                           cursor=incidents.dump_cursor(incidents.CursorState(still_open, state.watching_since)))
