"""Alerts stage: sensors that tell someone when a run fails, a blocking check fails, a source is late or a load
quarantines too much (plain logic in `customer_pipeline.alerts`, rules in docs/alerts.md)."""
