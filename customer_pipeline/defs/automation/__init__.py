"""Automation: per-source jobs, schedules and landing-folder sensors; downstream stages follow by declarative automation."""
