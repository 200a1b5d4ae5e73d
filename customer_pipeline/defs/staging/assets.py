"""Staging: standardised person records and the link tables the identity stage reads."""

import datetime as dt
import time

import dagster as dg

from customer_pipeline.defs.conventions import table_metadata
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.privacy import mask_frame
from customer_pipeline.quality.gx_runner import warm_up
from customer_pipeline.quality.report import validity_counts
from customer_pipeline.staging import incremental, unify
from customer_pipeline.warehouse import read_df

RAW_DEPS = [
    dg.AssetKey(["raw", name])
    for name in (
        "pos_loyalty_signups", "pos_transactions", "shop_customers", "shop_addresses", "shop_orders",
        "shop_order_items", "shop_email_events", "call_center_contacts", "app_events",
    )
]
# the columns the validity figures read (quality.report.VALIDITY)
FIGURE_COLUMNS = ("email", "email_valid", "phone_raw", "phone_valid")
LINK_TABLES = ("app_identity_links", "call_center_account_refs", "shop_orders", "pos_transactions")


class LinkTablesConfig(dg.Config):
    full_refresh: bool = False  # build staging.pos_transactions whole (the receipts of new files only, by default)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["staging", name], group_name="staging", kinds={"duckdb"}, deps=RAW_DEPS,
                     description=f"Set-based staging table `staging.{name}`.")
        for name in LINK_TABLES
    ],
    name="staging_link_tables", pool=WAREHOUSE_POOL,
)
def staging_link_tables(config: LinkTablesConfig, warehouse: WarehouseResource):
    # staging runs when some raw table changed, and its new records go to GX next: import GX (2-3 s of Python)
    # beside the staging SQL, not when the check starts (a no-op where the raw run already imported it)
    warm_up()
    with warehouse.connect() as con:
        missing = unify.missing_raw_tables(con)
        if missing:
            raise dg.Failure(f"raw tables missing (load the sources first): {', '.join(missing)}")
        counts = unify.build_link_tables(con, full=config.full_refresh)
        link_tables = {name: table_metadata(con, f"staging.{name}") for name in LINK_TABLES}
    for name in LINK_TABLES:
        built = {"build": dg.MetadataValue.text(counts["pos_transactions_build"])} if name == "pos_transactions" else {}
        yield dg.MaterializeResult(
            asset_key=["staging", name],
            metadata={"dagster/row_count": dg.MetadataValue.int(int(counts[f"staging.{name}"])), **link_tables[name],
                      **built},
        )


class StagingConfig(dg.Config):
    full_refresh: bool = False  # standardise every record again (new records only, by default)


@dg.asset(
    key=["staging", "person_records"], group_name="staging", kinds={"duckdb", "pandas"}, pool=WAREHOUSE_POOL,
    deps=RAW_DEPS + [dg.AssetKey(["staging", "call_center_account_refs"])],
    description="One standardised row per person-describing source record (names, emails, phones, dates, "
                "addresses, consent); only new and changed source records are standardised again.",
)
def person_records(context: dg.AssetExecutionContext, config: StagingConfig,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with warehouse.connect() as con:
        source = unify.PERSON_SOURCE  # built, hashed and diffed in DuckDB
        events = unify.email_events(con)
        started = time.perf_counter()
        delta = incremental.stage(con, source, events, now, force_full=config.full_refresh)
        seconds = time.perf_counter() - started
        figures = read_df(con, f"SELECT source, {', '.join(FIGURE_COLUMNS)} FROM staging.person_records")
        preview = con.execute(f"""SELECT source, source_key, first_name, last_name, email_corrected, phone_e164,
            birth_date, postcode, city, country FROM staging.person_records ORDER BY record_id LIMIT 5""").df()
        records_table = table_metadata(con, "staging.person_records")
    per_source = figures.groupby("source").size().to_dict()
    rate = delta.standardised / seconds if seconds else 0.0
    how = f"full ({delta.reason})" if delta.mode == "full" else "incremental"
    context.log.info(f"staging {how}: {delta.standardised} of {delta.total} records standardised, "
                     f"{delta.reused} reused, {delta.removed} removed in {seconds:.1f}s")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(len(figures)),
            **records_table,
            "mode": dg.MetadataValue.text(how),
            "records_standardised": dg.MetadataValue.int(delta.standardised),
            "records_reused": dg.MetadataValue.int(delta.reused),
            "records_removed": dg.MetadataValue.int(delta.removed),
            "records_per_source": dg.MetadataValue.json({k: int(v) for k, v in per_source.items()}),
            "standardise_seconds": dg.MetadataValue.float(round(seconds, 2)),
            "records_per_second": dg.MetadataValue.int(int(rate)),
            # one definition with the quality report: valid among the values given (and, apart, among all records)
            **{f"valid_{label}_share_of_given": dg.MetadataValue.float(round(v / g, 4) if g else 1.0)
               for label, (v, g) in ((lb, validity_counts(figures, lb)) for lb in ("email", "phone"))},
            "records_with_valid_email_share": dg.MetadataValue.float(
                round(float(figures["email_valid"].fillna(False).astype(bool).mean()), 4) if len(figures) else 0.0),
            "preview": dg.MetadataValue.md(mask_frame(preview).to_markdown(index=False)),
        }
    )
