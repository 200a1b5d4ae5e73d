"""The registers' cadence: once a day (`CUSTOMER_PIPELINE_SUPPRESSION_CRON`); the landing sensor loads a new
snapshot as soon as it lands. Not in `sla.SLA`: a deployment without registers is not late."""

import dagster as dg

from customer_pipeline.defs.automation.jobs import SOURCE_JOBS
from customer_pipeline.defs.automation.schedules import default_status, timezone
from customer_pipeline.settings import env

DEFAULT_CRON = "45 2 * * *"


def cron() -> str:
    return env("CUSTOMER_PIPELINE_SUPPRESSION_CRON", DEFAULT_CRON)


suppression_schedule = dg.ScheduleDefinition(
    name="suppression_schedule",
    job=SOURCE_JOBS["suppression"],
    cron_schedule=cron(),
    execution_timezone=timezone(),
    default_status=default_status(),
    description=f"Load new preference-register snapshots ({cron()}, {timezone()}).",
)
