"""The registers' cadence: once a day (`CUSTOMER_PIPELINE_SUPPRESSION_CRON`); the landing sensor loads a new
snapshot as soon as it lands. Not in `sla.SLA`: a deployment without registers is not late."""

from customer_pipeline.defs.automation.schedules import landing_schedule, timezone
from customer_pipeline.settings import env

DEFAULT_CRON = "45 2 * * *"


def cron() -> str:
    return env("CUSTOMER_PIPELINE_SUPPRESSION_CRON", DEFAULT_CRON)


suppression_schedule = landing_schedule(
    "suppression", cron(), f"Load new preference-register snapshots ({cron()}, {timezone()}), when one landed.")
