"""What an alert says: one line a person can act on, a few named details, no personal data."""

import datetime as dt
import re
from dataclasses import dataclass, field, replace

from customer_pipeline.privacy import scrub_text

OPEN, RESOLVED = "open", "resolved"
RUN_FAILURE, BLOCKING_CHECK = "run_failure", "blocking_check"
FRESHNESS, QUARANTINE_SPIKE = "freshness", "quarantine_spike"
ERROR_CHARS = 300
SUBJECT_PREFIX = "[customer-pipeline]"
_MODULE_PATH = re.compile(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*: )")


@dataclass(frozen=True)
class Alert:
    kind: str                      # run_failure, blocking_check, freshness, quarantine_spike
    key: str                       # the incident it opens or closes, e.g. "run_failure:pos_job"
    state: str                     # open or resolved
    title: str
    details: dict = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return f"{SUBJECT_PREFIX} {'ALERT' if self.state == OPEN else 'RESOLVED'}: {self.title}"

    @property
    def text(self) -> str:
        return "\n".join([self.subject, *(f"{k}: {v}" for k, v in self.details.items() if v is not None)])

    def with_details(self, **more) -> "Alert":
        return replace(self, details={**self.details, **more})

    def payload(self, sent_at: dt.datetime | None = None) -> dict:
        """The webhook's JSON body; `text` alone is enough for chat webhooks (Slack, Mattermost, Teams)."""
        sent_at = sent_at or dt.datetime.now(dt.UTC)
        return {"source": "customer_pipeline", "kind": self.kind, "key": self.key, "state": self.state,
                "title": self.title, "details": self.details, "text": self.text,
                "sent_at": sent_at.isoformat(timespec="seconds")}


def one_line_error(text: str | None, limit: int = ERROR_CHARS) -> str:
    """The first non-empty line of an error, emails and phone numbers masked, at most `limit` characters.

    Errors can quote a delivered value; masking keeps emails and phones out of mail boxes and chat rooms, and
    the first line alone leaves out the rows a traceback or a check report may quote further down."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    line = re.sub(r"\s+", " ", scrub_text(lines[0])) if lines else "(no error message)"
    line = _MODULE_PATH.sub("", line)  # dagster._core.errors.DagsterAssetCheckFailedError -> the class name
    return line if len(line) <= limit else line[: limit - 1] + "…"


def duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def run_key(job: str, step: str) -> str:
    return f"{RUN_FAILURE}:{job}:{step}"


def run_failed(job: str, run_id: str, step: str, error: str | None) -> Alert:
    """A step of a job's run failed (step "(run)": the run failed outside any step, e.g. its worker was lost)."""
    where = "outside any step" if step == "(run)" else f"at {step}"
    return Alert(RUN_FAILURE, run_key(job, step), OPEN, f"{job} failed {where}", {
        "job": job, "run_id": run_id, "failed_step": step, "error": one_line_error(error),
    })


def run_recovered(job: str, run_id: str, step: str, failed_run_id: str) -> Alert:
    what = "runs" if step == "(run)" else f"{step} succeeds"
    return Alert(RUN_FAILURE, run_key(job, step), RESOLVED, f"{job}: {what} again",
                 {"job": job, "run_id": run_id, "step": step, "last_failed_run_id": failed_run_id})


def check_key(asset: str, check: str) -> str:
    return f"{BLOCKING_CHECK}:{asset}:{check}"


def check_failed(asset: str, check: str, run_id: str, description: str | None = None) -> Alert:
    return Alert(BLOCKING_CHECK, check_key(asset, check), OPEN, f"blocking check {check} failed on {asset}", {
        "asset": asset, "check": check, "run_id": run_id,
        "description": one_line_error(description) if description else None,
        "effect": "assets downstream of it wait until the check passes",
    })


def check_passed(asset: str, check: str, run_id: str) -> Alert:
    return Alert(BLOCKING_CHECK, check_key(asset, check), RESOLVED, f"blocking check {check} passes again on {asset}",
                 {"asset": asset, "check": check, "run_id": run_id})


def source_late(source: str, status: str, lag_seconds: float | None, warn_seconds: float, fail_seconds: float,
                last_load: dt.datetime | None) -> Alert:
    what = "has never been loaded" if lag_seconds is None else f"is late: last load {duration(lag_seconds)} ago"
    return Alert(FRESHNESS, f"{FRESHNESS}:{source}", OPEN, f"source {source} {what}", {
        "source": source, "status": status, "since_last_load": duration(lag_seconds),
        "sla_warn": duration(warn_seconds), "sla_fail": duration(fail_seconds),
        "last_successful_load": last_load.isoformat(sep=" ", timespec="minutes") + " UTC" if last_load else "never",
    })


def source_fresh(source: str, lag_seconds: float | None) -> Alert:
    return Alert(FRESHNESS, f"{FRESHNESS}:{source}", RESOLVED, f"source {source} is fresh again",
                 {"source": source, "since_last_load": duration(lag_seconds)})


def quarantine_spike(source: str, run_id: str, rows_read: int, rows_quarantined: int, max_share: float) -> Alert:
    share = rows_quarantined / rows_read
    return Alert(QUARANTINE_SPIKE, f"{QUARANTINE_SPIKE}:{source}", OPEN,
                 f"{source} load quarantined {share:.1%} of its rows", {
                     "source": source, "run_id": run_id, "rows_read": rows_read, "rows_quarantined": rows_quarantined,
                     "share": round(share, 4), "max_share": max_share,
                     "where": "quarantine.rejected_records (reason per row or file)",
                 })


def quarantine_normal(source: str, run_id: str, rows_read: int, rows_quarantined: int) -> Alert:
    return Alert(QUARANTINE_SPIKE, f"{QUARANTINE_SPIKE}:{source}", RESOLVED,
                 f"{source} load is back under the quarantine threshold",
                 {"source": source, "run_id": run_id, "rows_read": rows_read, "rows_quarantined": rows_quarantined})
