"""`publish/postgres_gold`: the gold tables, swapped atomically into schema `gold` of PostgreSQL for BI."""

import time

import dagster as dg
import sqlalchemy as sa

from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.publish import publish_gold
from customer_pipeline.publish.postgres import bi_role_for
from customer_pipeline.settings import Settings, env
from customer_pipeline.warehouse import read_df, table_exists

GOLD_TABLES = (
    "golden_customers", "customer_xref", "customer_id_history", "households", "household_id_history",
    "source_freshness", "data_quality_report",
    # customer-360 marts (docs/marts.md)
    "customer_purchases", "customer_rfm", "market_basket", "customer_recommendations", "customer_churn",
    "marketing_audience", "customer_demographics",
)
GOLD_KEYS = [dg.AssetKey(["gold", name]) for name in GOLD_TABLES]


class PostgresPublishResource(dg.ConfigurableResource):
    """Where gold is published (`CUSTOMER_PIPELINE_PG_URL`) and the BI role that reads it."""

    pg_url: str | None = None
    bi_role: str | None = None  # None: bi_reader_<database>, one role per deployment
    bi_password: str | None = None


def publish_resource_from_env() -> PostgresPublishResource:
    # EnvVar, not the value: the UI shows the variable's name, never the URL and its password
    s = Settings.from_env()
    return PostgresPublishResource(
        pg_url=dg.EnvVar("CUSTOMER_PIPELINE_PG_URL") if s.pg_url else None,
        bi_role=s.bi_role,
        bi_password=dg.EnvVar("CUSTOMER_PIPELINE_BI_PASSWORD") if env("CUSTOMER_PIPELINE_BI_PASSWORD") else None,
    )


@dg.asset(
    key=["publish", "postgres_gold"], group_name="publish", kinds={"postgres"}, pool=WAREHOUSE_POOL, deps=GOLD_KEYS,
    description="Gold tables (golden customers, xref, id history, households, freshness, quality report, "
                "customer-360 marts) published to PostgreSQL.",
)
def postgres_gold(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, postgres_publish: PostgresPublishResource
) -> dg.MaterializeResult:
    # the asset exists only where a target is expected (see `publish` below): no URL, no gold = failed, never a
    # green materialisation that published nothing while PostgreSQL falls behind DuckDB
    url = (postgres_publish.pg_url or "").strip()
    if not url:
        raise dg.Failure("CUSTOMER_PIPELINE_PG_URL is not set where this run executes: nothing was published")
    with warehouse.connect(read_only=True) as con:
        present = [name for name in GOLD_TABLES if table_exists(con, f"gold.{name}")]
        tables = {name: read_df(con, f"SELECT * FROM gold.{name}") for name in present}
    if not tables:
        raise dg.Failure("no gold table in the warehouse yet: nothing was published")
    missing = [name for name in GOLD_TABLES if name not in present]
    target = sa.make_url(url).render_as_string(hide_password=True)
    started = time.perf_counter()
    role = bi_role_for(url, postgres_publish.bi_role)
    results = publish_gold(url, tables, role,
                           bi_password=postgres_publish.bi_password or None)
    seconds = time.perf_counter() - started
    context.log.info(f"published {present} to {target} in {seconds:.1f}s; not in the warehouse: {missing}")
    rows = "\n".join(f"| gold.{n} | {r['rows']} | {r['seconds']} | {'; '.join(r['notes']) or ''} |" for n, r in results.items())
    return dg.MaterializeResult(metadata={
        "published": dg.MetadataValue.bool(True),
        "target": dg.MetadataValue.text(target),
        "bi_role": dg.MetadataValue.text(role),
        "tables": dg.MetadataValue.md("| table | rows | seconds | notes |\n| --- | --- | --- | --- |\n" + rows),
        "not_in_warehouse": dg.MetadataValue.text(", ".join(missing) or "none"),
        "publish_seconds": dg.MetadataValue.float(round(seconds, 2)),
        "dagster/row_count": dg.MetadataValue.int(sum(int(r["rows"]) for r in results.values())),
    })


@dg.definitions
def publish() -> dg.Definitions:
    # A module with a Definitions function contributes only what it returns. Publishing off (the URL unset when
    # the code location loads) = no publish asset: nothing for the automation or `materialize_all` to run.
    if not Settings.from_env().pg_url:
        return dg.Definitions()
    return dg.Definitions(assets=[postgres_gold], resources={"postgres_publish": publish_resource_from_env()})
