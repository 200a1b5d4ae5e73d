"""Where alerts go: the Dagster log always, plus a webhook and mail when their variables are set."""

import dagster as dg

from customer_pipeline.alerts.delivery import DEFAULT_TIMEOUT_SECONDS, SmtpTarget, Targets
from customer_pipeline.settings import env

PREFIX = "CUSTOMER_PIPELINE_ALERT_"


class AlertTargetsResource(dg.ConfigurableResource):
    """Alert targets (`CUSTOMER_PIPELINE_ALERT_*`, docs/alerts.md); unset = that target is off."""

    webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str | None = None
    smtp_to: str | None = None             # comma-separated
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    def targets(self) -> Targets:
        recipients = tuple(a.strip() for a in (self.smtp_to or "").split(",") if a.strip())
        smtp = None
        if self.smtp_host and recipients:
            smtp = SmtpTarget(host=self.smtp_host, port=self.smtp_port, starttls=self.smtp_starttls,
                              sender=self.smtp_from or f"customer-pipeline@{self.smtp_host}", recipients=recipients,
                              user=self.smtp_user or None, password=self.smtp_password or None)
        return Targets(webhook_url=self.webhook_url or None, smtp=smtp, timeout_seconds=self.timeout_seconds)


def _var(name: str, kind=None):
    # EnvVar, not the value: the UI shows the variable's name, never the webhook token or the SMTP password;
    # the value is read where the sensor runs. Unset (or empty) variables leave the field at its default.
    full = PREFIX + name
    if env(full) is None:
        return {}
    return {name.lower(): kind(full) if kind else dg.EnvVar(full)}


def _seconds(name: str) -> float:
    try:
        return float(env(name))
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {env(name)!r}") from None


def alert_targets_from_env() -> AlertTargetsResource:
    starttls = (env(PREFIX + "SMTP_STARTTLS", "false") or "").lower() in ("1", "true", "yes", "on")
    return AlertTargetsResource(
        **_var("WEBHOOK_URL"), **_var("SMTP_HOST"), **_var("SMTP_PORT", dg.EnvVar.int), **_var("SMTP_FROM"),
        **_var("SMTP_TO"), **_var("SMTP_USER"), **_var("SMTP_PASSWORD"),
        **_var("TIMEOUT_SECONDS", _seconds), smtp_starttls=starttls,
    )


@dg.definitions
def alert_resources() -> dg.Definitions:
    return dg.Definitions(resources={"alert_targets": alert_targets_from_env()})
