"""Per-source accounting checks: every row read is loaded or quarantined (blocking)."""

import dagster as dg

from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.ingest.accounting import account_files, account_shop
from customer_pipeline.ingest.shop import SHOP_TABLES
from customer_pipeline.quality import thresholds

ROWS_ACCOUNTED_FOR = "rows_accounted_for"
ROWS_LOST_WITHIN_THRESHOLD = "rows_lost_within_threshold"


def _result(asset_key: list[str], report: dict) -> dg.AssetCheckResult:
    mismatches = report.pop("mismatches")
    report.pop("files_losing_rows", None)
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


def _loss_check(family: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(["raw", family]), name=ROWS_LOST_WITHIN_THRESHOLD, blocking=True,
        description=(
            "No delivered file lost more rows than tolerated: a file rejected whole (renamed column, broken "
            f"gzip, binary) fails; a file losing at least {thresholds.FILE_LOSS_MIN_ROWS} rows and more than "
            f"{thresholds.FILE_LOSS_MAX_SHARE:.0%} of them fails. Fixed by delivering a corrected file under the same name."
        ),
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect() as con:
            report = account_files(con, family)
        losing = report["files_losing_rows"]
        return dg.AssetCheckResult(
            asset_key=["raw", family],
            check_name=ROWS_LOST_WITHIN_THRESHOLD,
            passed=not losing,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "files": report["files"],
                "rows_read": report["rows_read"],
                "rows_quarantined": report["rows_quarantined"],
                "files_losing_rows": len(losing),
                "max_share_lost": dg.MetadataValue.float(thresholds.FILE_LOSS_MAX_SHARE),
                "details": dg.MetadataValue.md("\n".join(f"- {m}" for m in losing) or "none"),
            },
        )

    return _check


pos_loyalty_rows_accounted = _file_check("pos_loyalty_signups")
pos_transactions_rows_accounted = _file_check("pos_transactions")
call_center_rows_accounted = _file_check("call_center_contacts")
app_events_rows_accounted = _file_check("app_events")
pos_loyalty_rows_lost = _loss_check("pos_loyalty_signups")
pos_transactions_rows_lost = _loss_check("pos_transactions")
call_center_rows_lost = _loss_check("call_center_contacts")
app_events_rows_lost = _loss_check("app_events")


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
