"""Set-based SQL that turns the raw layer into the staging tables (no Dagster import)."""
