"""OTLP receivers (gRPC and HTTP) that write into a tracekit store, and the query endpoint.

Entry point: `collectors.service.build_collector(settings)`. Nothing is imported here, so the
decode worker processes (which import `collectors.decoding`) stay small.
"""
