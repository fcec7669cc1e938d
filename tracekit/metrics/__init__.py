"""Prometheus metrics from the spans and flows: RED per operation, flows per type, broker
waits, the service graph (docs/guides/metrics.md)."""
