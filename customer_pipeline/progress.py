"""Concise progress for unattended runs: one line per finished step with its outcome, duration, what it
materialised and how its checks went, a line per failed check (not Dagster's full log), and a `RunLog` of the
run's steps, checks and materialisations for the summary printed after it."""

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

import dagster as dg

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
SKIPPED_REASON = "an upstream step failed or a blocking check did not pass"
RUN_ENDS = ("RUN_SUCCESS", "RUN_FAILURE", "RUN_CANCELED", "PIPELINE_SUCCESS", "PIPELINE_FAILURE", "PIPELINE_CANCELED")


def root_cause(error) -> str:
    """The innermost error message of a step failure, on one line."""
    if error is None:
        return "unknown error"
    while error.cause is not None:
        error = error.cause
    # the first line that says something: DuckDB and others add context and a `^^^^` marker below it
    lines = [line.strip() for line in error.message.strip().splitlines() if any(ch.isalnum() for ch in line)]
    return lines[0] if lines else error.cls_name or "unknown error"


def failure_reason(data) -> str:
    """A step failure on one line: the step's own reason when it raised dg.Failure (a source's clear
    message), otherwise the innermost error."""
    user = getattr(data, "user_failure_data", None)
    if user is not None and user.description:
        return user.description.strip().splitlines()[0]
    return root_cause(getattr(data, "error", None))


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {int(seconds % 60)} s"


@dataclass(frozen=True)
class CheckOutcome:
    asset: str
    name: str
    passed: bool
    severity: str  # ERROR (blocking) or WARN

    @property
    def label(self) -> str:
        return f"{self.asset}:{self.name}"

    @property
    def warned(self) -> bool:
        return not self.passed and self.severity == "WARN"

    @property
    def failed(self) -> bool:
        return not self.passed and self.severity != "WARN"


@dataclass
class StepOutcome:
    key: str
    outcome: str = "planned"  # planned, running, ok, failed, skipped
    seconds: float | None = None
    reason: str = ""
    rows: dict[str, int | None] = field(default_factory=dict)  # asset materialised -> its row count
    checks: list[CheckOutcome] = field(default_factory=list)

    def line(self) -> str:
        parts = [f"{asset} {rows:,} rows" if rows is not None else asset for asset, rows in self.rows.items()]
        if self.checks:
            parts.append(check_counts(self.checks))
        if self.reason:
            parts.append(self.reason)
        outcome = {"ok": "ok", "failed": "FAILED", "skipped": "skipped"}.get(self.outcome, self.outcome)
        detail = f"  {'; '.join(parts)}" if parts else ""
        return f"- {outcome:7s} {seconds_text(self.seconds):>9s}  {self.key}{detail}"


def check_counts(checks: list[CheckOutcome]) -> str:
    """`12 checks (11 passed, 1 warned)`: the parts that are not zero."""
    passed = sum(c.passed for c in checks)
    warned = sum(c.warned for c in checks)
    failed = sum(c.failed for c in checks)
    parts = [f"{n} {word}" for n, word in ((passed, "passed"), (warned, "warned"), (failed, "failed")) if n]
    return f"{len(checks)} check{'s' if len(checks) != 1 else ''} ({', '.join(parts)})"


@dataclass
class RunLog:
    """What one run did, from its event log entries: steps, check evaluations and materialisation metadata."""

    run_id: str
    started_at: float | None = None  # epoch seconds of the first event
    steps: dict[str, StepOutcome] = field(default_factory=dict)
    checks: list[CheckOutcome] = field(default_factory=list)
    materialized: dict[str, dict] = field(default_factory=dict)  # asset -> {metadata key: plain value}
    _started: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_entries(cls, run_id: str, entries: Iterable) -> "RunLog":
        """Replay stored entries, e.g. `instance.all_logs(run_id)`."""
        log = cls(run_id)
        for entry in entries:
            log.record(entry)
        return log

    def _step(self, key: str) -> StepOutcome:
        return self.steps.setdefault(key, StepOutcome(key))

    def record(self, entry) -> list[str]:
        """Take one event log entry; return the progress lines it completes (a finished step and its failed checks)."""
        event = entry.dagster_event
        if event is None:
            return []
        if self.started_at is None:
            self.started_at = entry.timestamp
        kind, key = event.event_type_value, event.step_key
        if kind in ("ASSET_MATERIALIZATION_PLANNED", "ASSET_CHECK_EVALUATION_PLANNED") and key:
            self._step(key).outcome = "planned"
        elif kind in RUN_ENDS:
            # a step held back by a failed upstream step or blocking check emits nothing of its own
            held = [s for s in self.steps.values() if s.outcome == "planned"]
            for step in held:
                step.outcome, step.reason = "skipped", SKIPPED_REASON
            return [step.line() for step in held]
        elif kind == "STEP_START":
            self._started[key] = entry.timestamp
            self._step(key).outcome = "running"
        elif kind == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            asset = mat.asset_key.to_user_string()
            values = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
            self.materialized[asset] = values
            if key:
                rows = values.get("dagster/row_count")
                self._step(key).rows[asset] = int(rows) if isinstance(rows, int) else None
        elif kind == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            check = CheckOutcome(ev.asset_key.to_user_string(), ev.check_name, bool(ev.passed), ev.severity.value)
            self.checks.append(check)
            if key:
                self._step(key).checks.append(check)
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            step = self._step(key)
            step.outcome = {"STEP_SUCCESS": "ok", "STEP_FAILURE": "failed", "STEP_SKIPPED": "skipped"}[kind]
            duration = getattr(event.event_specific_data, "duration_ms", None)
            if duration is not None:
                step.seconds = duration / 1000
            elif key in self._started:
                step.seconds = entry.timestamp - self._started[key]
            if kind == "STEP_FAILURE":
                step.reason = failure_reason(event.event_specific_data)
            elif kind == "STEP_SKIPPED":
                step.reason = SKIPPED_REASON
            return [step.line()] + [
                f"    check {c.label} {'warned' if c.warned else 'FAILED'} ({c.severity})"
                for c in step.checks if not c.passed
            ]
        return []


_RUNS: dict[str, RunLog] = {}


def listener(event_log_entry) -> None:
    """Instance event listener (DagsterInstance.add_event_listener) printing progress lines and keeping the
    run's RunLog for `take_run_log`."""
    log = _RUNS.setdefault(event_log_entry.run_id, RunLog(event_log_entry.run_id))
    for line in log.record(event_log_entry):
        print(line, file=sys.stdout, flush=True)


def take_run_log(run_id: str) -> RunLog:
    """The RunLog the listener kept for `run_id` (an empty one when it saw nothing), released."""
    return _RUNS.pop(run_id, None) or RunLog(run_id)


def merged(logs: list[RunLog]) -> RunLog:
    """Several runs of one `customer-pipeline run` (raw layer, later stages) as one log."""
    out = RunLog(logs[0].run_id if logs else "")
    for log in logs:
        if out.started_at is None:
            out.started_at = log.started_at
        out.steps.update(log.steps)
        out.checks += log.checks
        out.materialized.update(log.materialized)
    return out


def describe(event: dg.DagsterEvent) -> str | None:
    """One event on its own (no step context): a failed check, a failed or skipped step; None otherwise."""
    kind = event.event_type_value
    if kind == "ASSET_CHECK_EVALUATION":
        ev = event.event_specific_data
        if ev.passed:
            return None
        return f"  check {ev.asset_key.to_user_string()}:{ev.check_name} FAILED ({ev.severity.value})"
    if kind == "STEP_FAILURE":
        return f"  step {event.step_key} FAILED: {failure_reason(event.event_specific_data)}"
    if kind == "STEP_SKIPPED":
        return f"  step {event.step_key} skipped: {SKIPPED_REASON}"
    return None
