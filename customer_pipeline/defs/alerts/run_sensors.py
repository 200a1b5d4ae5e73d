"""Run alerts: a step of a job that fails alerts once; while its later executions in that job fail too nothing
more is sent, and the first one that succeeds sends "resolved". Read from the job's own run history, so ad-hoc
and automation runs (all of job `__ASSET_JOB`, each with other assets) keep one incident per failing step."""

import dagster as dg

from customer_pipeline.alerts import messages, rules
from customer_pipeline.alerts.delivery import deliver
from customer_pipeline.defs.alerts.common import sensor_status
from customer_pipeline.defs.alerts.resources import AlertTargetsResource

FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]
# how many earlier finished runs of the job are searched for a step's previous execution
HISTORY_RUNS = 30
STEP_OUTCOMES = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}


def _root_message(error) -> str:
    # Dagster wraps an exception raised in an asset in DagsterExecutionStepExecutionError: the cause says what
    while error.cause is not None:
        error = error.cause
    return error.message


def _failure(event: dg.DagsterEvent) -> tuple[str, str | None, str]:
    """(step, Dagster's error class, the underlying error's message) of a STEP_FAILURE event."""
    error = event.step_failure_data.error
    return event.step_key, error.cls_name if error else None, _root_message(error) if error else event.message


def _step_events(instance: dg.DagsterInstance, run_id: str) -> tuple[list[tuple[str, str | None, str]], list[str]]:
    events = [r.event_log_entry.dagster_event
              for r in instance.get_records_for_run(run_id=run_id, of_type=STEP_OUTCOMES).records]
    failures = [_failure(e) for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    return failures, [e.step_key for e in events if e.event_type == dg.DagsterEventType.STEP_SUCCESS]


def run_error(event: dg.DagsterEvent) -> str | None:
    """Why a run failed outside any step (its launch, a lost worker), from its RUN_FAILURE event."""
    error = getattr(event.event_specific_data, "error", None)
    return _root_message(error) if error else event.message


def outcomes(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict[str, bool]:
    """Step -> failed in this finished run (see `rules.step_outcomes`)."""
    failures, successes = _step_events(instance, run.run_id)
    return rules.step_outcomes(run.status == dg.DagsterRunStatus.FAILURE, failures, successes)


def previous_outcomes(instance: dg.DagsterInstance, run: dg.DagsterRun, steps: set[str]) -> dict[str, tuple[bool, str]]:
    """Step -> (failed, run id) of its latest execution in an earlier finished run of the same job; steps that
    did not run in the last HISTORY_RUNS runs are left out."""
    created = instance.get_run_record_by_id(run.run_id).create_timestamp
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=run.job_name, statuses=FINISHED, created_before=created), limit=HISTORY_RUNS)
    found: dict[str, tuple[bool, str]] = {}
    for record in records:
        earlier = record.dagster_run
        if earlier.run_id == run.run_id:
            continue
        for step, failed in outcomes(instance, earlier).items():
            if step in steps and step not in found:
                found[step] = (failed, earlier.run_id)
        if found.keys() >= steps:
            break
    return found


def alert_on_run(context: dg.RunStatusSensorContext, alert_targets: AlertTargetsResource) -> None:
    """Open an incident per newly failing step of this run; resolve those of its steps that failed before."""
    run, instance = context.dagster_run, context.instance
    failures, successes = _step_events(instance, run.run_id)
    failed_run = run.status == dg.DagsterRunStatus.FAILURE
    to_alert = rules.run_failure_steps(failures) if failed_run else []
    if to_alert is None:
        context.log.info(f"{run.job_name} run {run.run_id} failed only by blocking checks: "
                         "blocking_check_alert_sensor alerts on them")
        to_alert = []
    elif failed_run and not to_alert:
        to_alert = [(rules.RUN_ITSELF, run_error(context.dagster_event))]
    now = rules.step_outcomes(failed_run, failures, successes)
    before = previous_outcomes(instance, run, set(now))
    targets = alert_targets.targets()
    for step, error in to_alert:
        if before.get(step, (False, ""))[0]:
            context.log.info(f"{run.job_name}: {step} failed again in run {run.run_id}; its incident (run "
                             f"{before[step][1]}) is still open, no new alert")
            continue
        deliver(messages.run_failed(run.job_name, run.run_id, step, error), targets, context.log)
    for step, failed in sorted(now.items()):
        if not failed and before.get(step, (False, ""))[0]:
            deliver(messages.run_recovered(run.job_name, run.run_id, step, before[step][1]), targets, context.log)


@dg.run_failure_sensor(
    name="run_failure_alert_sensor", default_status=sensor_status(),
    description="Alerts once when a step of a job fails (job, run id, failed step, the error's first line, masked); "
    "its later failures in that job add nothing until it succeeds again.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alert_targets: AlertTargetsResource):
    alert_on_run(context, alert_targets)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS, name="run_recovery_alert_sensor", default_status=sensor_status(),
    description="Sends \"resolved\" when a step whose last execution in its job failed (and alerted) succeeds.",
)
def run_recovery_alert_sensor(context: dg.RunStatusSensorContext, alert_targets: AlertTargetsResource):
    alert_on_run(context, alert_targets)
