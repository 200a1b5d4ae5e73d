"""A console logger for unattended runs: one line per asset, check and failure, not Dagster's full log."""

import logging
import sys

import dagster as dg
from dagster._core.log_manager import get_log_record_metadata, has_log_record_metadata


class _ProgressHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if not has_log_record_metadata(record):
            return
        event = get_log_record_metadata(record).get("dagster_event")
        if event is None:
            return
        kind = event.event_type_value
        line = None
        if kind == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            rows = mat.metadata.get("dagster/row_count")
            line = f"  materialised {mat.asset_key.to_user_string():40s} rows={getattr(rows, 'value', '-')}"
        elif kind == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            status = "passed" if ev.passed else f"FAILED ({ev.severity.value})"
            line = f"  check {ev.asset_key.to_user_string()}:{ev.check_name} {status}"
        elif kind == "STEP_FAILURE":
            err = event.event_specific_data.error
            msg = err.message.strip().splitlines()[-1] if err else "unknown error"
            line = f"  step {event.step_key} FAILED: {msg}"
        elif kind == "STEP_START":
            line = f"- {event.step_key}"
        elif kind == "STEP_SKIPPED":
            line = f"  step {event.step_key} skipped (an upstream blocking check failed or upstream failed)"
        if line:
            print(line, file=sys.stdout, flush=True)


@dg.logger(description="Concise per-asset progress on stdout.")
def progress_logger(_init_context) -> logging.Logger:
    log = logging.Logger("customer_pipeline.progress", level=logging.DEBUG)
    log.addHandler(_ProgressHandler())
    return log
