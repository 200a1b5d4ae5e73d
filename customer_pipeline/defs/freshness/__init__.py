"""Freshness stage: per-source delivery lag against its SLA, for BI (`gold.source_freshness`)."""
