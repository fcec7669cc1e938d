-- The stored flows holding the traces in new_traces, with their time bounds.
SELECT flow_id, min(flow_start) AS flow_start, max(flow_end) AS flow_end
FROM flow_traces
WHERE flow_id IN (SELECT flow_id FROM flow_traces WHERE trace_id IN (SELECT v FROM new_traces))
GROUP BY flow_id
