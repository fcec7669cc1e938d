"""`tracekit check`: assertions on flows, spans and broker waits, read from a YAML file and
measured on the store's analysis tables, for CI (docs/guides/checks.md)."""
