"""OTLP receivers (gRPC and HTTP) that write into a tracekit store, and the query endpoint."""

from collectors.service import Collector, CollectorSettings, build_collector

__all__ = ["Collector", "CollectorSettings", "build_collector"]
