-- The stored flows that new spans connect to, with their time bounds: the flows of the new
-- spans' traces and of the traces they link to (new_traces), of stored spans linking to
-- the new traces (linked_from), sharing a message id, or sharing a business key that is not
-- too generic to stitch on (at most $max_traces traces hold it).
WITH hit AS (
    SELECT flow_id FROM flow_traces WHERE trace_id IN (SELECT v FROM new_traces)
    UNION SELECT flow_id FROM flow_links WHERE target_trace_id IN (SELECT v FROM linked_from)
    UNION SELECT flow_id FROM flow_message_ids WHERE message_id IN (SELECT v FROM new_message_ids)
    UNION SELECT flow_id FROM flow_business_keys
          WHERE business_key IN (SELECT business_key FROM flow_business_keys
                                 WHERE business_key IN (SELECT v FROM new_keys)
                                 GROUP BY business_key
                                 HAVING count(DISTINCT trace_id) <= $max_traces)
)
SELECT flow_id, min(flow_start) AS flow_start, max(flow_end) AS flow_end
FROM flow_traces WHERE flow_id IN (SELECT flow_id FROM hit)
GROUP BY flow_id
