"""OTLP payloads (protobuf and JSON) decoded into Arrow batches ready for the store."""
