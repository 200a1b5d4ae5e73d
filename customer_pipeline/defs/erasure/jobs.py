"""Job `erase_person`: the right to erasure from the UI or a schedule-free launch (as `customer-pipeline erase`).

Run config is kept in Dagster's run storage: name the person by customer id or source key there; an email
or phone given here stays readable in the run's config (use the CLI for those; docs/erasure.md)."""

import dagster as dg

from customer_pipeline.defs.jobs import WAREHOUSE_TAGS
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.erasure.resolve import ErasureError, Request
from customer_pipeline.erasure.service import erase
from customer_pipeline.settings import Settings


class ErasureConfig(dg.Config):
    """Exactly one way to name the person."""

    customer_id: str | None = None
    email: str | None = None
    phone: str | None = None
    source_key: str | None = None  # SOURCE:KEY, e.g. pos:card:295201355871
    country: str | None = None     # region of a phone written nationally
    request_id: str | None = None
    redraw_charts: bool = True


@dg.op(pool=WAREHOUSE_POOL, description="Remove one person from every layer and register their hashed identifiers.")
def erase_person_op(context: dg.OpExecutionContext, config: ErasureConfig, warehouse: WarehouseResource) -> None:
    named = [k for k in ("customer_id", "email", "phone", "source_key") if getattr(config, k)]
    if len(named) != 1:
        raise dg.Failure(f"name the person exactly one way (customer_id, email, phone or source_key), got {named or 'none'}")
    request = Request(config.customer_id, config.email, config.phone, config.source_key, config.country)
    try:
        report = erase(warehouse.path, request, pg_url=Settings.from_env().pg_url,
                       request_id=config.request_id or context.run.run_id, redraw_charts=config.redraw_charts)
    except ErasureError as exc:
        raise dg.Failure(str(exc)) from exc
    context.log.info(f"erasure {report.request_id}: {report.customers} customer(s), {report.records} record(s)")
    context.add_output_metadata({
        "request_id": report.request_id,
        "customers": report.customers,
        "records": report.records,
        "register_identifiers": report.identifiers,
        "removed_per_table": dg.MetadataValue.md(
            "\n".join(f"- `{t}`: {n}" for t, n in report.removed.items() if n) or "nothing found"),
        "artefacts_redrawn": len(report.artefacts_redrawn),
        **{f"seconds_{k}": dg.MetadataValue.float(v) for k, v in report.seconds.items()},
    })


@dg.job(tags=WAREHOUSE_TAGS, description="Right to erasure (GDPR art. 17): one person out of raw, staging, "
        "identity, gold, PostgreSQL and the artefacts; later deliveries of them suppressed on arrival.")
def erase_person():
    erase_person_op()
