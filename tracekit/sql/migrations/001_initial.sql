-- Schema version 1: spans, logs, ingest batches, and ClickHouse-exporter-style views.
-- Attribute maps are VARIANT so values keep their OTLP types:
--   attributes['http.status_code'] >= 500, attributes['http.route'] = '/orders/{id}'.

CREATE TABLE ingest_batches (
    batch_id     UBIGINT PRIMARY KEY,
    received_at  TIMESTAMPTZ NOT NULL,
    source       VARCHAR NOT NULL,          -- otlp-grpc, otlp-http, import
    spans        UINTEGER NOT NULL,         -- rows written (duplicates excluded)
    logs         UINTEGER NOT NULL,
    duplicates   UINTEGER NOT NULL          -- re-sent spans ignored
);

CREATE TABLE spans (
    trace_id                 VARCHAR NOT NULL,   -- 32 lower-case hex digits
    span_id                  VARCHAR NOT NULL,   -- 16 lower-case hex digits
    parent_span_id           VARCHAR,            -- NULL for a root span
    trace_state              VARCHAR,
    name                     VARCHAR NOT NULL,
    kind                     VARCHAR NOT NULL,   -- INTERNAL SERVER CLIENT PRODUCER CONSUMER
    start_time               TIMESTAMP_NS NOT NULL,
    end_time                 TIMESTAMP_NS NOT NULL,
    duration_ns              BIGINT NOT NULL,
    status_code              VARCHAR NOT NULL,   -- UNSET OK ERROR
    status_message           VARCHAR,
    service_name             VARCHAR NOT NULL,
    resource_attributes      VARIANT,
    scope_name               VARCHAR,
    scope_version            VARCHAR,
    attributes               VARIANT,
    events                   STRUCT("time" TIMESTAMP_NS, name VARCHAR, attributes VARIANT,
                                    dropped_attributes_count UINTEGER)[],
    links                    STRUCT(trace_id VARCHAR, span_id VARCHAR, trace_state VARCHAR,
                                    attributes VARIANT, flags UINTEGER,
                                    dropped_attributes_count UINTEGER)[],
    flags                    UINTEGER,           -- W3C trace flags and OTLP span flags
    dropped_attributes_count UINTEGER,
    dropped_events_count     UINTEGER,
    dropped_links_count      UINTEGER,
    ingest_notes             VARCHAR[],          -- what tracekit adjusted: see README
    batch_id                 UBIGINT NOT NULL
);

CREATE TABLE logs (
    "timestamp"              TIMESTAMP_NS,       -- time_unix_nano, else observed time
    observed_timestamp       TIMESTAMP_NS,
    trace_id                 VARCHAR,            -- NULL when the record has no trace context
    span_id                  VARCHAR,
    trace_flags              UINTEGER,
    severity_number          INTEGER,
    severity_text            VARCHAR,
    body                     VARIANT,
    attributes               VARIANT,
    resource_attributes      VARIANT,
    service_name             VARCHAR NOT NULL,
    scope_name               VARCHAR,
    scope_version            VARCHAR,
    event_name               VARCHAR,
    dropped_attributes_count UINTEGER,
    batch_id                 UBIGINT NOT NULL
);

-- The OpenTelemetry Collector's ClickHouse exporter names, for readers who know them.
CREATE VIEW otel_traces AS
SELECT start_time            AS "Timestamp",
       trace_id              AS "TraceId",
       span_id               AS "SpanId",
       coalesce(parent_span_id, '') AS "ParentSpanId",
       trace_state           AS "TraceState",
       name                  AS "SpanName",
       kind                  AS "SpanKind",
       service_name          AS "ServiceName",
       resource_attributes   AS "ResourceAttributes",
       scope_name            AS "ScopeName",
       scope_version         AS "ScopeVersion",
       attributes            AS "SpanAttributes",
       duration_ns           AS "Duration",
       status_code           AS "StatusCode",
       status_message        AS "StatusMessage",
       list_transform(events, lambda e: e."time")       AS "Events.Timestamp",
       list_transform(events, lambda e: e.name)         AS "Events.Name",
       list_transform(events, lambda e: e.attributes)   AS "Events.Attributes",
       list_transform(links, lambda l: l.trace_id)      AS "Links.TraceId",
       list_transform(links, lambda l: l.span_id)       AS "Links.SpanId",
       list_transform(links, lambda l: l.trace_state)   AS "Links.TraceState",
       list_transform(links, lambda l: l.attributes)    AS "Links.Attributes"
FROM spans;

CREATE VIEW otel_logs AS
SELECT "timestamp"           AS "Timestamp",
       coalesce(trace_id, '') AS "TraceId",
       coalesce(span_id, '')  AS "SpanId",
       trace_flags           AS "TraceFlags",
       severity_text         AS "SeverityText",
       severity_number       AS "SeverityNumber",
       service_name          AS "ServiceName",
       body                  AS "Body",
       resource_attributes   AS "ResourceAttributes",
       scope_name            AS "ScopeName",
       scope_version         AS "ScopeVersion",
       attributes            AS "LogAttributes"
FROM logs;
