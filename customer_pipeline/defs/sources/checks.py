"""Per-source accounting checks: every row read is loaded or quarantined (blocking)."""

import dagster as dg

from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.ingest.accounting import account_files, account_shop
from customer_pipeline.ingest.shop import SHOP_TABLES

ROWS_ACCOUNTED_FOR = "rows_accounted_for"


def _result(asset_key: list[str], report: dict) -> dg.AssetCheckResult:
    mismatches = report.pop("mismatches")
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=ROWS_ACCOUNTED_FOR,
        passed=not mismatches,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            **{k: v for k, v in report.items() if isinstance(v, int)},
            "mismatches": dg.MetadataValue.md("\n".join(f"- {m}" for m in mismatches) or "none"),
        },
    )


def _file_check(family: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(["raw", family]), name=ROWS_ACCOUNTED_FOR, blocking=True,
        description="Rows read = rows loaded (+ re-delivered duplicates) + rows quarantined, file by file.",
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect() as con:
            return _result(["raw", family], account_files(con, family))

    return _check


pos_loyalty_rows_accounted = _file_check("pos_loyalty_signups")
pos_transactions_rows_accounted = _file_check("pos_transactions")
call_center_rows_accounted = _file_check("call_center_contacts")
app_events_rows_accounted = _file_check("app_events")


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(ROWS_ACCOUNTED_FOR, asset=dg.AssetKey(["raw", f"shop_{t}"]), blocking=True)
        for t in SHOP_TABLES
    ],
    description="Shop extract: rows read = loaded + unchanged + quarantined; one raw row per primary key.",
)
def shop_rows_accounted(warehouse: WarehouseResource):
    with warehouse.connect() as con:
        for table in SHOP_TABLES:
            yield _result(["raw", f"shop_{table}"], account_shop(con, table))
