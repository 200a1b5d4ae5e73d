"""Jobs over the whole graph (the CLI's `run`, a data engineer's full refresh)."""

import dagster as dg

# every run that writes the DuckDB warehouse carries this tag; dagster.yaml lets one such run go at a time
WAREHOUSE_TAGS = {"warehouse": "duckdb"}

materialize_all = dg.define_asset_job(
    "materialize_all",
    # identity/splink_model trains only when the warehouse has no model; retraining is job retrain_identity_model
    selection=dg.AssetSelection.all() - dg.AssetSelection.tag("automation", "manual"),
    tags=WAREHOUSE_TAGS,
    description="Every asset and check once: sources, staging, quality, identity, gold.",
)
