"""Shop rows dated in the future: loaded, but named here so the date can be fixed at the source."""

import dagster as dg

from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.ingest.shop import FUTURE_TOLERANCE, SHOP_TABLES, rows_dated_in_future

NO_ROWS_DATED_IN_FUTURE = "no_rows_dated_in_future"
LISTED_KEYS = 100  # keys named in the metadata; the count is always complete
DATED = [name for name, table in SHOP_TABLES.items() if table.watermark]


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(NO_ROWS_DATED_IN_FUTURE, asset=dg.AssetKey(["raw", f"shop_{name}"])) for name in DATED],
    description=f"Rows whose `updated_at` (`occurred_at`) lies more than {FUTURE_TOLERANCE} ahead: loaded, "
                "but they never set the watermark (a wrong clock or a placeholder date at the shop).",
)
def shop_rows_dated_in_future(warehouse: WarehouseResource):
    with warehouse.connect() as con:
        for name in DATED:
            keys = rows_dated_in_future(con, name)
            listed = ", ".join(keys[:LISTED_KEYS]) + (" ..." if len(keys) > LISTED_KEYS else "")
            yield dg.AssetCheckResult(
                asset_key=["raw", f"shop_{name}"], check_name=NO_ROWS_DATED_IN_FUTURE, passed=not keys,
                severity=dg.AssetCheckSeverity.WARN,
                # primary keys only: no personal data in the UI
                metadata={"rows": len(keys), "keys": dg.MetadataValue.md(listed or "none")},
            )
