"""Staging: standardised person records and the link tables the identity stage reads."""

import datetime as dt
import time

import dagster as dg

from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.privacy import mask_frame
from customer_pipeline.quality.report import validity_counts
from customer_pipeline.staging import unify
from customer_pipeline.standardize.person_records import standardize_person_records
from customer_pipeline.warehouse import replace_table

RAW_DEPS = [
    dg.AssetKey(["raw", name])
    for name in (
        "pos_loyalty_signups", "pos_transactions", "shop_customers", "shop_addresses", "shop_orders",
        "shop_order_items", "shop_email_events", "call_center_contacts", "app_events",
    )
]
LINK_TABLES = ("app_identity_links", "call_center_account_refs", "shop_orders", "pos_transactions")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["staging", name], group_name="staging", kinds={"duckdb"}, deps=RAW_DEPS,
                     description=f"Set-based staging table `staging.{name}`.")
        for name in LINK_TABLES
    ],
    name="staging_link_tables", pool=WAREHOUSE_POOL,
)
def staging_link_tables(warehouse: WarehouseResource):
    with warehouse.connect() as con:
        missing = unify.missing_raw_tables(con)
        if missing:
            raise dg.Failure(f"raw tables missing (load the sources first): {', '.join(missing)}")
        counts = unify.build_link_tables(con)
    for name in LINK_TABLES:
        yield dg.MaterializeResult(
            asset_key=["staging", name],
            metadata={"dagster/row_count": dg.MetadataValue.int(int(counts[f"staging.{name}"]))},
        )


@dg.asset(
    key=["staging", "person_records"], group_name="staging", kinds={"duckdb", "pandas"}, pool=WAREHOUSE_POOL,
    deps=RAW_DEPS + [dg.AssetKey(["staging", "call_center_account_refs"])],
    description="One standardised row per person-describing source record (names, emails, phones, dates, addresses, consent).",
)
def person_records(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with warehouse.connect() as con:
        source = unify.person_source(con)
        events = unify.email_events(con)
        started = time.perf_counter()
        records = standardize_person_records(source, events, now)
        seconds = time.perf_counter() - started
        records.insert(0, "record_id", records["source"] + "|" + records["source_key"])
        replace_table(con, "staging.person_records", records)
    per_source = records.groupby("source").size().to_dict()
    rate = len(records) / seconds if seconds else 0.0
    context.log.info(f"standardised {len(records)} records in {seconds:.1f}s ({rate:,.0f} records/s)")
    preview = records[["source", "source_key", "first_name", "last_name", "email_corrected", "phone_e164",
                       "birth_date", "postcode", "city", "country"]].head(5)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(len(records)),
            "records_per_source": dg.MetadataValue.json({k: int(v) for k, v in per_source.items()}),
            "standardise_seconds": dg.MetadataValue.float(round(seconds, 2)),
            "records_per_second": dg.MetadataValue.int(int(rate)),
            # one definition with the quality report: valid among the values given (and, apart, among all records)
            **{f"valid_{label}_share_of_given": dg.MetadataValue.float(round(v / g, 4) if g else 1.0)
               for label, (v, g) in ((lb, validity_counts(records, lb)) for lb in ("email", "phone"))},
            "records_with_valid_email_share": dg.MetadataValue.float(
                round(float(records["email_valid"].fillna(False).astype(bool).mean()), 4)),
            "preview": dg.MetadataValue.md(mask_frame(preview).to_markdown(index=False)),
        }
    )
