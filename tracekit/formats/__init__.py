"""Other formats than OTLP (Zipkin v2, Jaeger JSON, JSON-lines logs), converted to OTLP/JSON
documents so that they are decoded and stored by the same path as OTLP exports."""
