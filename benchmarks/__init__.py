"""Benchmarks: scripts run from the project root; `febrl` is also imported by its test."""
