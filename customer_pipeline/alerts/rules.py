"""When a condition counts as an incident, and when it counts as cleared (thresholds in one place)."""

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from customer_pipeline import freshness
from customer_pipeline.alerts import messages
from customer_pipeline.alerts.incidents import Observation

# A source's load is a quarantine spike when it sent more than this share of the rows it read to
# quarantine.rejected_records, and at least QUARANTINE_SPIKE_MIN_ROWS rows (a 15-minute app file of 20 events
# with 2 bad ones is not a spike). The sample data quarantines well under 1 %.
QUARANTINE_SPIKE_SHARE = 0.02
QUARANTINE_SPIKE_MIN_ROWS = 20

# The error Dagster raises in a step whose blocking check failed: that run failure is the check's alert.
BLOCKING_CHECK_ERROR = "DagsterAssetCheckFailedError"
# The "step" of a run that failed outside any step (its launch, a lost run worker).
RUN_ITSELF = "(run)"


def run_failure_steps(failures: Iterable[tuple[str, str | None, str]]) -> list[tuple[str, str]] | None:
    """(step, error) to name in a run alert, from (step, error class, message) of the run's failed steps.

    [] when the run failed outside any step (launch, lost worker); None when every failed step failed only by
    its blocking check: that failure is the blocking-check alert's (one alert per incident)."""
    failures = list(failures)
    steps = [(step, message) for step, cls, message in failures if cls != BLOCKING_CHECK_ERROR]
    return None if failures and not steps else steps


def step_outcomes(run_failed: bool, failures: Iterable[tuple[str, str | None, str]],
                  successes: Iterable[str]) -> dict[str, bool]:
    """Step -> failed (True) or succeeded (False) in one finished run, for run incidents. A step failed only by
    its blocking check counts as neither; RUN_ITSELF failed when the run failed outside any step."""
    failures = list(failures)
    out = {step: False for step in successes}
    out.update({step: True for step, cls, _ in failures if cls != BLOCKING_CHECK_ERROR})
    if not run_failed:
        out[RUN_ITSELF] = False
    elif not failures:
        out[RUN_ITSELF] = True
    return out


def freshness_observations(
    measured: Iterable[freshness.SourceFreshness], watching_since: dt.datetime | None = None
) -> list[Observation]:
    """A source past its fail window is late; it is on time again only when fresh (below its warn window), so a
    source hovering around its fail window does not flap. A source never loaded is late once the sensor has
    watched it for a whole fail window (`watching_since`, UTC): a new deployment gets that long for its first
    deliveries."""
    out = []
    for m in measured:
        lag = None if m.lag is None else m.lag.total_seconds()
        watched = (m.measured_at.replace(tzinfo=dt.UTC) - watching_since) if watching_since else m.sla.fail
        if m.status == freshness.FAILED or (m.status == freshness.NEVER_LOADED and watched >= m.sla.fail):
            alert = messages.source_late(m.source, m.status, lag, m.sla.warn.total_seconds(),
                                         m.sla.fail.total_seconds(), m.last_successful_load)
            out.append(Observation(alert.key, True, alert))
        elif m.status == freshness.FRESH:
            alert = messages.source_fresh(m.source, lag)
            out.append(Observation(alert.key, False, alert))
    return out


@dataclass(frozen=True)
class SourceLoad:
    """What one run loaded from one source: rows read and rows quarantined over its raw tables."""

    source: str
    run_id: str
    rows_read: int
    rows_quarantined: int


def quarantine_observations(
    loads: Iterable[SourceLoad], max_share: float = QUARANTINE_SPIKE_SHARE, min_rows: int = QUARANTINE_SPIKE_MIN_ROWS
) -> list[Observation]:
    """A load that read nothing says nothing (an open spike stays open until a load with rows is clean)."""
    out = []
    for load in loads:
        if load.rows_read <= 0:
            continue
        spike = load.rows_quarantined >= min_rows and load.rows_quarantined > max_share * load.rows_read
        counts = (load.source, load.run_id, load.rows_read, load.rows_quarantined)
        alert = messages.quarantine_spike(*counts, max_share) if spike else messages.quarantine_normal(*counts)
        out.append(Observation(alert.key, spike, alert))
    return out


def check_observations(latest: Mapping[tuple[str, str], tuple[str, bool, str | None]]) -> list[Observation]:
    """(asset, check) -> (run id, failed with ERROR severity, description) of each blocking check's latest
    evaluation; checks not evaluated yet or in progress are left out by the caller."""
    out = []
    for (asset, check), (run_id, failed, description) in sorted(latest.items()):
        alert = (messages.check_failed(asset, check, run_id, description) if failed
                 else messages.check_passed(asset, check, run_id))
        out.append(Observation(alert.key, failed, alert))
    return out
