"""Data quality: expectation suites, their thresholds, a GX runner and the data-quality report.

Plain Python (no Dagster); the Dagster glue lives in `customer_pipeline.defs.quality`.
"""
