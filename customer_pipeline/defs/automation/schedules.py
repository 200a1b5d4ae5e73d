"""Per-source cadence: POS nightly, shop hourly, call center every 4 hours, app events every 15 minutes.

Each cron comes from `CUSTOMER_PIPELINE_<SOURCE>_CRON` (default: `sla.SLA`), in `CUSTOMER_PIPELINE_TIMEZONE`
(default UTC). They are read when the code location loads: reload it after changing them.
"""

from pathlib import Path

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
    if source == "shop":  # a database: every tick reads what changed since the watermark
        return dg.ScheduleDefinition(
            name=f"{source}_schedule",
            job=SOURCE_JOBS[source],
            cron_schedule=cron(source),
            execution_timezone=timezone(),
            default_status=default_status(),
            description=f"Load the {source} source on its delivery cadence ({cron(source)}, {timezone()}).",
        )
    return landing_schedule(source, cron(source),
                            f"Load the {source} source on its delivery cadence ({cron(source)}, {timezone()}), "
                            "when its folder holds a new or corrected file.")


def landing_schedule(source: str, cron_schedule: str, description: str) -> dg.ScheduleDefinition:
    """A file source's schedule: a safety net beside its landing sensor, so it starts a run only when the folder
    holds a file version the warehouse does not (a run with nothing to load would show green for nothing and
    rebuild everything downstream)."""
    from customer_pipeline.defs.resources import SourcesResource, WarehouseResource

    @dg.schedule(name=f"{source}_schedule", job=SOURCE_JOBS[source], cron_schedule=cron_schedule,
                 execution_timezone=timezone(), default_status=default_status(), description=description)
    def _schedule(context: dg.ScheduleEvaluationContext, sources: SourcesResource, warehouse: WarehouseResource):
        from customer_pipeline.defs.automation.sensors import LANDING_FOLDERS, run_key, scan, warehouse_hashes

        folder = LANDING_FOLDERS[source]
        current, changed = scan(Path(sources.landing_dir), folder, {}, warehouse_hashes(warehouse, folder))
        if not changed:
            return dg.SkipReason(f"no new or corrected file in {folder}/ ({len(current)} already in the warehouse)")
        return dg.RunRequest(run_key=run_key(source, current, changed),
                             tags={"landing_files": str(len(changed)), "landing_first_file": changed[0]})

    return _schedule


pos_schedule = source_schedule("pos")
shop_schedule = source_schedule("shop")
call_center_schedule = source_schedule("call_center")
app_schedule = source_schedule("app")
