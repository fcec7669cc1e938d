"""`tracekit collect`: the collector (the only command that imports `collectors`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tracekit.cli.common import at_least_one, db_option, duration
from tracekit.errors import TracekitError, UsageError
from tracekit.redaction import DEFAULT_PATTERNS


def add_parser(commands) -> None:
    collect = commands.add_parser("collect", help="receive OTLP (gRPC and HTTP) into the store until stopped",
                                  description="Receive OTLP traces and logs over gRPC and HTTP and "
                                  "commit them to the store. Runs until SIGINT or SIGTERM.")
    db_option(collect)
    collect.add_argument("--grpc", default="127.0.0.1:4317", metavar="HOST:PORT",
                         help="OTLP/gRPC address (default 127.0.0.1:4317; port 0 picks one)")
    collect.add_argument("--http", default="127.0.0.1:4318", metavar="HOST:PORT",
                         help="OTLP/HTTP address (default 127.0.0.1:4318; port 0 picks one)")
    collect.add_argument("--zipkin", metavar="HOST:PORT",
                         help="also receive Zipkin v2 spans (POST /api/v2/spans, JSON or "
                              "protobuf) here; usually 127.0.0.1:9411 (default: off). See "
                              "docs/guides/zipkin-and-jaeger.md")
    collect.add_argument("--keep-proxy-spans", action="store_true",
                         help="show Istio/Envoy sidecar spans as services of their own, not as "
                              "part of the service each sidecar sits beside")
    collect.add_argument("--redact", action="append", default=[], metavar="REGEX",
                         help="also mask attributes whose key contains this word (regular "
                              "expression; repeatable). Always masked: "
                              + ", ".join(DEFAULT_PATTERNS))
    collect.add_argument("--auth-token-file", type=Path, metavar="FILE",
                         help="require 'Authorization: Bearer <token>' on both receivers, the "
                              "token read from FILE (not given on the command line, where "
                              "other users could see it)")
    collect.add_argument("--tls-cert", type=Path, metavar="FILE",
                         help="serve both receivers over TLS with this certificate (PEM; the "
                              "chain after it); needs --tls-key")
    collect.add_argument("--tls-key", type=Path, metavar="FILE",
                         help="the certificate's private key (PEM, unencrypted)")
    collect.add_argument("--tls-client-ca", type=Path, metavar="FILE",
                         help="mTLS: refuse clients without a certificate signed by this CA (PEM)")
    collect.add_argument("--retention", metavar="DURATION",
                         help="delete spans and logs received longer ago than this (e.g. 7d, "
                              "12h), in the background")
    collect.add_argument("--max-size", metavar="SIZE",
                         help="delete the oldest spans and logs while the store uses more than "
                              "this (e.g. 10GB, 500MiB)")
    collect.add_argument("--retention-check", metavar="DURATION", default="60s",
                         help="how often retention runs (default 60s)")
    collect.add_argument("--memory-limit", type=int, default=1536, metavar="MIB",
                         help="resident memory of the collector and its decode and analysis "
                              "workers; from 85%% of it exports are refused with a retryable "
                              "answer, and the analysis works in smaller chunks (or waits) to "
                              "stay under 70%% (default 1536; with --no-analysis 512 is enough; "
                              "0: no limit)")
    collect.add_argument("--decode-workers", type=at_least_one, metavar="N",
                         help="processes that decode requests (default: 1 on 2 cores, else 2); "
                              "protobuf traces decode in C, OTLP/JSON and logs in Python, so a "
                              "collector taking mostly JSON gains from 2, at ~75 MiB each")
    collect.add_argument("--no-analysis", action="store_true",
                         help="do not keep the analysis tables (flows, critical paths) current "
                              "while collecting: all the CPU goes to ingest, and `tracekit "
                              "analyze` brings them up to date once the collector has stopped")
    collect.add_argument("--metrics-naming", choices=("tempo", "otel"), default="tempo",
                         help="GET /metrics on the HTTP port names span metrics as Tempo's "
                              "metrics-generator (traces_spanmetrics_*, the default) or as the "
                              "OpenTelemetry span-metrics connector (traces_span_metrics_*)")
    collect.add_argument("--flow-metrics-delay", metavar="DURATION", default="30s",
                         help="count a flow in /metrics once it has ended this long ago: late "
                              "spans may still join it until then (default 30s)")
    collect.add_argument("--lake", metavar="URI",
                         help="also ship what is committed to this lake (Iceberg tables, catalog "
                              "in PostgreSQL), e.g. postgresql://postgres@127.0.0.1:5432/lake"
                              "?warehouse=/data/lake; see docs/guides/lake.md")
    collect.add_argument("--lake-every", metavar="DURATION", default="10s",
                         help="how often to ship to the lake (default 10s)")
    collect.set_defaults(run=cmd_collect)


def cmd_collect(args: argparse.Namespace) -> int:
    import asyncio

    import re

    from collectors.service import CollectorSettings, serve, split_address

    token = None
    if args.auth_token_file is not None:
        try:
            token = args.auth_token_file.read_text().strip()
        except OSError as exc:
            raise TracekitError(f"cannot read the token file: {exc}") from None
        if not token:
            raise TracekitError(f"{args.auth_token_file} is empty: put the bearer token in it")
    for address in (args.grpc, args.http, *([args.zipkin] if args.zipkin else [])):
        try:
            split_address(address)
        except ValueError as exc:
            raise TracekitError(str(exc)) from None
    for pattern in args.redact:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise TracekitError(f"--redact {pattern!r} is not a regular expression: {exc}") from None
    tls = None
    if args.tls_cert is not None or args.tls_key is not None or args.tls_client_ca is not None:
        if args.tls_cert is None or args.tls_key is None:
            raise TracekitError("TLS needs both --tls-cert FILE and --tls-key FILE "
                                "(--tls-client-ca adds mTLS on top)")
        from collectors import tls as server_tls

        tls = server_tls.load(args.tls_cert, args.tls_key, args.tls_client_ca)
    settings = CollectorSettings(db=args.db, grpc=args.grpc, http=args.http, auth_token=token,
                                 redact_patterns=(*DEFAULT_PATTERNS, *args.redact), tls=tls,
                                 memory_limit_mib=args.memory_limit,
                                 retention=_retention(args), analysis=not args.no_analysis,
                                 zipkin=args.zipkin, keep_proxy_spans=args.keep_proxy_spans,
                                 metrics_naming=args.metrics_naming,
                                 flow_metrics_delay_s=duration(args.flow_metrics_delay),
                                 **({"decode_workers": args.decode_workers}
                                    if args.decode_workers else {}),
                                 **_lake_settings(args))

    def announce(line: str) -> None:
        print(line, flush=True)

    asyncio.run(serve(settings, announce))
    return 0


def _lake_settings(args: argparse.Namespace) -> dict:
    """The collector's lake settings from --lake and --lake-every (none without --lake)."""
    if args.lake is None:
        return {}
    from tracekit.lake.location import LakeLocation

    every = duration(args.lake_every)
    if not every or every <= 0:
        raise UsageError("--lake-every is a duration above zero, e.g. 10s")
    return {"lake": LakeLocation.parse(args.lake), "lake_every_s": every}


def _retention(args: argparse.Namespace):
    from collectors.retention import RetentionSettings
    from tracekit.units import parse_duration, parse_size

    try:
        return RetentionSettings(
            max_age_s=parse_duration(args.retention) if args.retention else None,
            max_size_bytes=parse_size(args.max_size) if args.max_size else None,
            check_every_s=parse_duration(args.retention_check))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
