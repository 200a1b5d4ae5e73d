"""Publishing the golden layer outside the DuckDB warehouse (PostgreSQL for BI)."""

from customer_pipeline.publish.postgres import GOLD_SPECS, TableSpec, normalise_pg_url, publish_gold

__all__ = ["GOLD_SPECS", "TableSpec", "normalise_pg_url", "publish_gold"]
