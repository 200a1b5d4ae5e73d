"""Metadata every raw asset shows in the UI: row counts, a preview, and what this load did."""

import dagster as dg
import duckdb

from customer_pipeline.defs import conventions
from customer_pipeline.privacy import mask_frame

PREVIEW_ROWS = 5
LINEAGE = ("_source", "_location", "_record_ref", "_content_hash", "_ingested_at", "_run_id")


def table_metadata(con: duckdb.DuckDBPyConnection, table: str, load: dict) -> dict:
    """Row count, lineage-free markdown preview and the load's own counters."""
    count = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    preview = con.execute(f"SELECT * FROM {table} ORDER BY _location, _record_ref LIMIT {PREVIEW_ROWS}").df()
    # the event log cannot be erased per person: the preview is masked (customer_pipeline.privacy)
    preview = mask_frame(preview[[c for c in preview.columns if c not in LINEAGE]])
    meta = {
        "dagster/row_count": dg.MetadataValue.int(int(count)),
        **conventions.table_metadata(con, table),
        "preview": dg.MetadataValue.md(preview.to_markdown(index=False) if len(preview) else "_empty_"),
    }
    meta.update({k: dg.MetadataValue.int(int(v)) for k, v in load.items() if isinstance(v, int)})
    if load.get("rows_loaded"):
        # the table's GX check will validate the new rows: import GX while the other sources load
        from customer_pipeline.quality.gx_runner import warm_up

        warm_up()
    return meta
