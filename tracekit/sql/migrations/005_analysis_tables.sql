-- Schema version 5: the analyzer's results kept in the store (docs/design/analysis-tables.md).
-- (IF NOT EXISTS / OR REPLACE: a store whose version was rewound keeps what it has.)
-- The collector (and `tracekit analyze`, `tracekit import`) updates them as batches are
-- committed, re-analyzing only the flows new spans touch; readers read them with the window
-- they ask for instead of re-analyzing every span.
--
-- Progress: the last ingest batch whose spans the tables hold. Append-only, one row per
-- update (an UPDATE of a progress row made DuckDB refuse checkpoints while another
-- transaction was open, see 004); readers take the newest row.
CREATE TABLE IF NOT EXISTS analysis_progress (
    analyzed_through UBIGINT NOT NULL,
    analyzed_at      TIMESTAMPTZ NOT NULL,
    spans            UBIGINT NOT NULL,     -- spans read by this update
    flows            UBIGINT NOT NULL      -- flows written by this update
);

-- One row per flow: what depends on the flow's own spans only. Its status (which also depends
-- on the usual shape of its workflow and on the time) and type name are joined in by `flows`.
CREATE TABLE IF NOT EXISTS flow_rows (
    flow_id       VARCHAR NOT NULL,
    start_time    TIMESTAMP_NS NOT NULL,
    end_time      TIMESTAMP_NS NOT NULL,
    duration_ms   DOUBLE NOT NULL,
    failed        BOOLEAN NOT NULL,
    style         VARCHAR,
    async_share   DOUBLE,
    sync_hops     BIGINT,
    async_hops    BIGINT,
    coordinator   VARCHAR,
    type_id       VARCHAR,
    root_service  VARCHAR,
    root_name     VARCHAR,
    root_span     VARCHAR,               -- trace:span of its root
    business_key  VARCHAR,
    traces        BIGINT,
    spans         BIGINT,
    errors        BIGINT,
    services      VARCHAR[],
    retries       BIGINT,
    timeouts      BIGINT,
    fast_fails    BIGINT,
    compensations BIGINT,
    dead_letters  BIGINT,
    skew_adjusted BIGINT
);

CREATE TABLE IF NOT EXISTS flow_spans (
    flow_id      VARCHAR NOT NULL,
    trace_id     VARCHAR NOT NULL,
    span_id      VARCHAR NOT NULL,
    service_name VARCHAR,
    name         VARCHAR,
    kind         VARCHAR,
    start_time   TIMESTAMP_NS,          -- adjusted for clock skew (skew_note says how)
    end_time     TIMESTAMP_NS,
    self_ms      DOUBLE,
    error        BOOLEAN,
    skew_note    VARCHAR
);

-- dst_ms, dst_error: the receiving span's duration and error, for the service graph.
-- flow_start: its flow's start, so that replacing a flow's rows reads only that stretch.
CREATE TABLE IF NOT EXISTS flow_edges (
    flow_id      VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,
    via          VARCHAR NOT NULL,
    src_trace_id VARCHAR, src_span_id VARCHAR, src_service VARCHAR, src_name VARCHAR,
    dst_trace_id VARCHAR, dst_span_id VARCHAR, dst_service VARCHAR, dst_name VARCHAR,
    wait_ms      DOUBLE,
    destination  VARCHAR,
    dst_ms       DOUBLE,
    dst_error    BOOLEAN,
    flow_start   TIMESTAMP_NS
);

CREATE TABLE IF NOT EXISTS critical_path (
    flow_id      VARCHAR NOT NULL,
    seq          BIGINT NOT NULL,
    trace_id     VARCHAR, span_id VARCHAR,
    service_name VARCHAR, name VARCHAR,
    segment      VARCHAR,               -- span | broker_wait
    start_time   TIMESTAMP_NS,
    end_time     TIMESTAMP_NS,
    duration_ms  DOUBLE
);

-- What stitching looks up to find the stored flows new spans join: each trace's flow, the
-- traces stored spans link to, message ids and business keys, each with its flow.
CREATE TABLE IF NOT EXISTS flow_traces (trace_id VARCHAR NOT NULL, flow_id VARCHAR NOT NULL,
                          flow_start TIMESTAMP_NS NOT NULL, flow_end TIMESTAMP_NS NOT NULL);
CREATE TABLE IF NOT EXISTS flow_links (target_trace_id VARCHAR NOT NULL, flow_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS flow_message_ids (message_id VARCHAR NOT NULL, flow_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS flow_business_keys (business_key VARCHAR NOT NULL, trace_id VARCHAR NOT NULL,
                                 flow_id VARCHAR NOT NULL);

-- Critical-path time per flow type and step, kept as signed deltas (a flow analyzed again
-- subtracts what it added before) and summed when the types are refreshed.
CREATE TABLE IF NOT EXISTS flow_type_steps (
    type_id VARCHAR, service_name VARCHAR, name VARCHAR, segment VARCHAR, duration_ns HUGEINT
);

-- Each flow type's readable shape, written once per type.
CREATE TABLE IF NOT EXISTS flow_shapes (type_id VARCHAR PRIMARY KEY, signature VARCHAR NOT NULL);

-- The flow types, refreshed from flow_rows after updates; missing_steps and quiet_ns say which
-- steps of its workflow's usual shape a type lacks, and after how long without new spans a
-- flow of it is incomplete rather than running.
CREATE TABLE IF NOT EXISTS flow_type_rows (
    type_id        VARCHAR,
    flows          BIGINT,
    root_service   VARCHAR,
    root_name      VARCHAR,
    style          VARCHAR,
    error_rate     DOUBLE,
    p50_ms         DOUBLE,
    p95_ms         DOUBLE,
    p99_ms         DOUBLE,
    compensating   BOOLEAN,
    signature      VARCHAR,
    variant        BIGINT,
    name           VARCHAR,
    critical_steps STRUCT(service VARCHAR, name VARCHAR, segment VARCHAR, share DOUBLE)[],
    missing_steps  VARCHAR[],
    quiet_ns       DOUBLE
);

-- Flows as they stand at `as_of_ns`: a flow lacking steps of its workflow's usual shape is
-- running until it has been quiet for its type's quiet_ns, then incomplete.
CREATE OR REPLACE MACRO flows_at(as_of_ns) AS TABLE
SELECT f.flow_id, f.start_time, f.end_time, f.duration_ms,
       CASE WHEN f.failed THEN 'failed'
            WHEN f.errors > 0 THEN 'degraded'
            WHEN len(coalesce(t.missing_steps, [])) = 0 THEN 'complete'
            WHEN as_of_ns - epoch_ns(f.end_time) >= t.quiet_ns THEN 'incomplete'
            ELSE 'running' END AS status,
       f.failed, f.style, f.async_share, f.sync_hops, f.async_hops, f.coordinator,
       f.type_id, t.name AS type_name, f.root_service, f.root_name, f.business_key, f.traces,
       f.spans, f.errors, f.services, f.retries, f.timeouts, f.fast_fails, f.compensations,
       f.dead_letters,
       CASE WHEN f.errors = 0 THEN coalesce(t.missing_steps, []) ELSE []::VARCHAR[] END
           AS missing_steps,
       f.skew_adjusted, f.root_span
FROM flow_rows AS f LEFT JOIN flow_type_rows AS t USING (type_id);

CREATE OR REPLACE VIEW flows AS SELECT * FROM flows_at(epoch_ns(now()));

CREATE OR REPLACE VIEW flow_types AS
SELECT type_id, flows, root_service, root_name, style, error_rate, p50_ms, p95_ms, p99_ms,
       compensating, signature, variant, name, critical_steps
FROM flow_type_rows;

-- The service graph of the flows started in [start_ns, end_ns): synchronous calls between
-- services, and hops into and out of broker nodes ('broker:<destination>'); a publish
-- reaching several consumers counts once into it. `service_edges` is that of every flow.
CREATE OR REPLACE MACRO service_edges_between(start_ns, end_ns) AS TABLE
WITH edges AS (
    SELECT * FROM flow_edges
    WHERE flow_start >= make_timestamp_ns(start_ns) AND flow_start < make_timestamp_ns(end_ns)
), hops AS (
    SELECT src_service, dst_service, 'sync' AS kind, dst_error AS error, dst_ms AS ms
    FROM edges WHERE kind = 'call' AND src_service IS DISTINCT FROM dst_service
    UNION ALL
    SELECT DISTINCT ON (src_trace_id, src_span_id, coalesce(destination, '?'))
           src_service, 'broker:' || coalesce(destination, '?'), 'async', false, NULL::DOUBLE
    FROM edges WHERE kind <> 'call'
    UNION ALL
    SELECT 'broker:' || coalesce(destination, '?'), dst_service, 'async', dst_error, wait_ms
    FROM edges WHERE kind <> 'call'
)
SELECT src_service, dst_service, kind, count(*) AS calls, count(*) FILTER (error) AS errors,
       quantile_cont(ms, 0.5) AS p50_ms, quantile_cont(ms, 0.95) AS p95_ms,
       quantile_cont(ms, 0.99) AS p99_ms, count(*) FILTER (error) / count(*) AS error_rate
FROM hops GROUP BY ALL;

CREATE OR REPLACE VIEW service_edges AS
SELECT * FROM service_edges_between(-9223372036854775806, 9223372036854775806);   -- every TIMESTAMP_NS

-- Traces whose spans retention deleted: the analysis re-analyzes (or drops) their flows from
-- the spans left, then removes them from here. Written in retention's delete transaction.
CREATE TABLE IF NOT EXISTS analysis_forget (trace_id VARCHAR NOT NULL);
