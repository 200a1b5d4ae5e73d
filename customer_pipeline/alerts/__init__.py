"""Alerts for runs nobody watches: messages, incident book-keeping and delivery (no Dagster).

The Dagster sensors in `customer_pipeline/defs/alerts/` decide what holds now; this package turns that into
one alert when an incident opens and one "resolved" message when it closes, and delivers them to the
configured targets (webhook, SMTP) besides the Dagster log. Rules and configuration: `docs/alerts.md`.
"""
