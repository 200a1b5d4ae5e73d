"""Pictures for the Dagster UI: small PNG charts as `data:` URIs, drawn offline with matplotlib (Agg).

Plain modules, no Dagster import: each function takes a DataFrame (or reads the warehouse, `from_warehouse`)
and returns a data URI; `customer_pipeline.defs.conventions.picture` puts it in an asset's markdown metadata,
which the UI renders as an image (its markdown sanitiser allows `data:` image sources, see README "The UI").
"""
