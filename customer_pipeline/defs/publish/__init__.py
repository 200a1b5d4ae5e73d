"""Publish stage: the gold tables copied to PostgreSQL for BI (when CUSTOMER_PIPELINE_PG_URL is set)."""
