-- Schema version 1: spans, logs, resources, ingest batches, and ClickHouse-exporter-style views.
-- Attribute maps are VARIANT so values keep their OTLP types:
--   attributes['http.status_code'] >= 500, attributes['http.route'] = '/orders/{id}'.
-- A resource (service, host, pod...) is stored once in `resources`; the `spans` and `logs`
-- views join it back, so every span row still shows its resource_attributes.

CREATE TABLE resources (
    resource_id    UBIGINT PRIMARY KEY,   -- hash of the resource's attributes
    service_name   VARCHAR NOT NULL,
    attributes     VARIANT,
    first_seen     TIMESTAMPTZ NOT NULL
);

CREATE TABLE ingest_batches (
    batch_id     UBIGINT PRIMARY KEY,
    received_at  TIMESTAMPTZ NOT NULL,
    source       VARCHAR NOT NULL,          -- otlp-grpc, otlp-http, import
    spans        UINTEGER NOT NULL,         -- rows written (duplicates excluded)
    logs         UINTEGER NOT NULL,
    duplicates   UINTEGER NOT NULL          -- re-sent spans ignored
);

CREATE TABLE span_rows (
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
    resource_id              UBIGINT NOT NULL,   -- resources.resource_id
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
    ingest_notes             VARCHAR[],          -- what tracekit adjusted: see docs/guides/sql-and-schema.md
    batch_id                 UBIGINT NOT NULL
);

CREATE TABLE log_rows (
    "timestamp"              TIMESTAMP_NS,       -- time_unix_nano, else observed time
    observed_timestamp       TIMESTAMP_NS,
    trace_id                 VARCHAR,            -- NULL when the record has no trace context
    span_id                  VARCHAR,
    trace_flags              UINTEGER,
    severity_number          INTEGER,
    severity_text            VARCHAR,
    body                     VARIANT,
    attributes               VARIANT,
    service_name             VARCHAR NOT NULL,
    resource_id              UBIGINT NOT NULL,
    scope_name               VARCHAR,
    scope_version            VARCHAR,
    event_name               VARCHAR,
    dropped_attributes_count UINTEGER,
    batch_id                 UBIGINT NOT NULL
);

CREATE VIEW spans AS
SELECT s.trace_id, s.span_id, s.parent_span_id, s.trace_state, s.name, s.kind,
       s.start_time, s.end_time, s.duration_ns, s.status_code, s.status_message,
       s.service_name, r.attributes AS resource_attributes, s.scope_name, s.scope_version,
       s.attributes, s.events, s.links, s.flags, s.dropped_attributes_count,
       s.dropped_events_count, s.dropped_links_count, s.ingest_notes, s.batch_id
FROM span_rows AS s LEFT JOIN resources AS r USING (resource_id);

CREATE VIEW logs AS
SELECT l."timestamp", l.observed_timestamp, l.trace_id, l.span_id, l.trace_flags,
       l.severity_number, l.severity_text, l.body, l.attributes,
       r.attributes AS resource_attributes, l.service_name, l.scope_name, l.scope_version,
       l.event_name, l.dropped_attributes_count, l.batch_id
FROM log_rows AS l LEFT JOIN resources AS r USING (resource_id);

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
