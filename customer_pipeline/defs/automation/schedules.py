"""Per-source cadence: POS nightly, shop hourly, call center every 4 hours, app events every 15 minutes.

Each cron comes from `CUSTOMER_PIPELINE_<SOURCE>_CRON` (default: `sla.SLA`), in `CUSTOMER_PIPELINE_TIMEZONE`
(default UTC). They are read when the code location loads: reload it after changing them.
"""

import dagster as dg

from customer_pipeline.defs.automation.jobs import SOURCE_JOBS
from customer_pipeline.defs.sources.sla import SLA
from customer_pipeline.settings import env


def timezone() -> str:
    return env("CUSTOMER_PIPELINE_TIMEZONE", "UTC")


def cron(source: str) -> str:
    return env(f"CUSTOMER_PIPELINE_{source.upper()}_CRON", SLA[source]["cron"])


def default_status() -> dg.DefaultScheduleStatus:
    """RUNNING, so a fresh deployment keeps itself fresh; CUSTOMER_PIPELINE_AUTOMATION=stopped starts it paused."""
    stopped = env("CUSTOMER_PIPELINE_AUTOMATION", "running").lower() == "stopped"
    return dg.DefaultScheduleStatus.STOPPED if stopped else dg.DefaultScheduleStatus.RUNNING


def source_schedule(source: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=f"{source}_schedule",
        job=SOURCE_JOBS[source],
        cron_schedule=cron(source),
        execution_timezone=timezone(),
        default_status=default_status(),
        description=f"Load the {source} source on its delivery cadence ({cron(source)}, {timezone()}).",
    )


pos_schedule = source_schedule("pos")
shop_schedule = source_schedule("shop")
call_center_schedule = source_schedule("call_center")
app_schedule = source_schedule("app")
