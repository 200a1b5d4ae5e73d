"""Concise progress for unattended runs: one line per step, asset, check and failure (not Dagster's full log)."""

import sys

import dagster as dg

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def root_cause(error) -> str:
    """The innermost error message of a step failure, on one line."""
    if error is None:
        return "unknown error"
    while error.cause is not None:
        error = error.cause
    lines = [line for line in error.message.strip().splitlines() if line.strip()]
    return lines[-1] if lines else error.cls_name or "unknown error"


def failure_reason(data) -> str:
    """A step failure on one line: the step's own reason when it raised dg.Failure (a source's clear
    message), otherwise the innermost error."""
    user = getattr(data, "user_failure_data", None)
    if user is not None and user.description:
        return user.description.strip().splitlines()[0]
    return root_cause(getattr(data, "error", None))


def describe(event: dg.DagsterEvent) -> str | None:
    kind = event.event_type_value
    if kind == "STEP_START":
        return f"- {event.step_key}"
    if kind == "ASSET_MATERIALIZATION":
        mat = event.event_specific_data.materialization
        rows = mat.metadata.get("dagster/row_count")
        return f"  materialised {mat.asset_key.to_user_string():40s} rows={getattr(rows, 'value', '-')}"
    if kind == "ASSET_CHECK_EVALUATION":
        ev = event.event_specific_data
        if ev.passed:
            return None  # passing checks are counted in the summary, failures are named here
        return f"  check {ev.asset_key.to_user_string()}:{ev.check_name} FAILED ({ev.severity.value})"
    if kind == "STEP_FAILURE":
        return f"  step {event.step_key} FAILED: {failure_reason(event.event_specific_data)}"
    if kind == "STEP_SKIPPED":
        return f"  step {event.step_key} skipped: an upstream step failed or a blocking check did not pass"
    return None


def listener(event_log_entry) -> None:
    """Instance event listener (DagsterInstance.add_event_listener) printing progress lines."""
    event = event_log_entry.dagster_event
    if event is None:
        return
    line = describe(event)
    if line:
        print(line, file=sys.stdout, flush=True)
