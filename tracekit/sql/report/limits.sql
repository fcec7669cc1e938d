-- What the data of the window's flows lacks or had adjusted: spans whose parent was never
-- stored, spans moved for clock skew, hops received before they were sent, spans with
-- dropped attributes, events or links, spans adjusted at ingest, spans of no named service,
-- flows still incomplete; and the warning and error logs of the window that carry no trace
-- context (nothing joins them to a span).
-- A flow's spans start within its bounds (by their own clocks), so only the store from the
-- window's start on is read; and a trace belongs to one flow, so a parent that is not among
-- its flow's spans was never stored.
WITH picked AS MATERIALIZED (
    SELECT * FROM flows
    WHERE start_time >= $start::TIMESTAMP_NS AND start_time < $end::TIMESTAMP_NS
      AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
      AND ($flow_id::VARCHAR IS NULL OR flow_id = $flow_id::VARCHAR)
), in_flows AS MATERIALIZED (
    SELECT fs.trace_id, fs.span_id, fs.start_time
    FROM flow_spans AS fs JOIN picked USING (flow_id)
    WHERE fs.start_time >= $start::TIMESTAMP_NS
), backwards AS (
    -- Hops through a broker whose receiver started before its sender did: the two hosts'
    -- clocks disagree (skew is corrected within a trace, not across a hop between traces).
    SELECT count(*) AS n
    FROM flow_edges AS e JOIN picked USING (flow_id)
    JOIN in_flows AS src ON src.trace_id = e.src_trace_id AND src.span_id = e.src_span_id
    JOIN in_flows AS dst ON dst.trace_id = e.dst_trace_id AND dst.span_id = e.dst_span_id
    WHERE e.kind <> 'call' AND e.flow_start >= $start::TIMESTAMP_NS
      AND dst.start_time < src.start_time
), mine AS MATERIALIZED (
    SELECT s.trace_id, s.span_id, s.parent_span_id, s.ingest_notes, s.service_name,
           s.dropped_attributes_count + s.dropped_events_count + s.dropped_links_count AS dropped
    FROM spans AS s JOIN in_flows USING (trace_id, span_id)
    WHERE s.start_time >= $start::TIMESTAMP_NS
), orphans AS (
    SELECT count(*) AS n FROM mine AS m
    WHERE m.parent_span_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM mine AS p WHERE p.trace_id = m.trace_id AND p.span_id = m.parent_span_id)
)
SELECT (SELECT n FROM orphans) AS orphan_spans,
       (SELECT coalesce(sum(skew_adjusted), 0) FROM picked)::BIGINT AS skew_adjusted_spans,
       (SELECT n FROM backwards) AS hops_received_before_sent,
       (SELECT count(*) FROM mine WHERE dropped > 0) AS spans_with_dropped_data,
       (SELECT count(*) FROM mine WHERE len(ingest_notes) > 0) AS spans_adjusted_at_ingest,
       (SELECT count(*) FROM mine
        WHERE service_name IS NULL OR service_name = '' OR starts_with(service_name, 'unknown_service'))
           AS spans_without_service,
       (SELECT count(*) FROM picked WHERE status IN ('incomplete', 'running')) AS incomplete_flows,
       (SELECT count(*) FROM logs AS l
        WHERE $flow_id::VARCHAR IS NULL AND l.severity_number >= 13 AND l.trace_id IS NULL
          AND l."timestamp" >= $start::TIMESTAMP_NS AND l."timestamp" < $end::TIMESTAMP_NS)
           AS logs_without_trace_context
