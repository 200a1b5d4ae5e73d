"""Per-source cadence and freshness SLA: one readable place (schedules and freshness read it)."""

from datetime import timedelta

import dagster as dg

# the DuckDB warehouse takes one writer at a time: every asset that writes it runs in this pool
WAREHOUSE_POOL = "duckdb_warehouse"

SLA = {
    "pos": {"cron": "30 2 * * *", "warn": timedelta(hours=26), "fail": timedelta(hours=30)},
    "shop": {"cron": "5 * * * *", "warn": timedelta(hours=2), "fail": timedelta(hours=3)},
    "call_center": {"cron": "15 */4 * * *", "warn": timedelta(hours=5), "fail": timedelta(hours=8)},
    "app": {"cron": "*/15 * * * *", "warn": timedelta(minutes=30), "fail": timedelta(hours=1)},
}


def freshness(source: str) -> dg.FreshnessPolicy:
    return dg.FreshnessPolicy.time_window(fail_window=SLA[source]["fail"], warn_window=SLA[source]["warn"])
